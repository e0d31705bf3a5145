// Public surface of @keyward/core: explicit named re-exports only.
export * from './errors.ts';
export * from './types.ts';
export * from './roles.ts';
export { newId, type IdPrefix } from './ids.ts';
export { randomBase62, isBase62, BASE62_ALPHABET } from './encoding/base62.ts';
export {
  DEFAULT_TOKEN_PREFIXES,
  TOKEN_BODY_LENGTH,
  TOKEN_CHECKSUM_LENGTH,
  findTokens,
  generateToken,
  isValidTokenPrefix,
  isWellFormedToken,
  parseToken,
  tokenHint,
  tokenPattern,
  tokenPatternSource,
  type ParsedToken,
  type TokenKind,
  type TokenPrefixes,
} from './tokens/token-format.ts';
export {
  KeyringError,
  candidateDigests,
  digestsEqual,
  hashToken,
  newKeyringEntry,
  nextKeyringVersion,
  parseKeyring,
  type Keyring,
  type KeyringSecret,
} from './tokens/keyring.ts';
export {
  BUILT_IN_SCOPES,
  DEMO_SCOPES,
  ScopeCatalogError,
  buildScopeCatalog,
  expandScopes,
  grantableScopes,
  isScopePattern,
  matchesScope,
  presetScopes,
  scopesAboveRole,
  unknownScopes,
  type ScopeCatalog,
  type ScopeDefinition,
  type ScopePreset,
} from './scopes/scope-catalog.ts';
export { effectivePermission, type EffectivePermission, type OwnerAccess, type TokenGrant } from './permissions/effective-permission.ts';
export { isCidrWithin, isIpAllowed, isValidCidr, normalizeCidr, parseCidr } from './net/cidr.ts';
export { decodeCursor, encodeCursor, toPage, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from './pagination.ts';
export type { EventBus, KeywardEvent } from './ports/event-bus.ts';
export type { AuditFilter, ImportedKey, MemberPageRequest, NewToken, PageAfter, PageRequest, PasswordHasher, Store, TokenChanges, TokenFilter } from './ports/store.ts';
export { auditEvent, publishSafely, SYSTEM_REQUEST, type RequestFacts, type ServiceDeps } from './services/context.ts';
export { canManageToken, canViewToken, hasManagerScope, hasScope, requirePermission, requireScope, requireUser } from './services/access.ts';
export { TOKEN_NAME_PATTERN, MAX_METADATA_BYTES, type TokenSettingsInput } from './tokens/token-settings.ts';
export { createToken, type IssuedToken, type TokenTarget } from './tokens/create-token.ts';
export {
  MAX_LEGACY_TOKEN_LENGTH,
  MIN_LEGACY_SECRET_LENGTH,
  SHA256_SECRET_VERSION,
  isValidLegacyPrefix,
  legacyPrefixOf,
  legacyTokenHint,
  lookupDigests,
  overlapsNativePrefix,
  sha256Digest,
  type TokenHashKind,
} from './tokens/legacy-token.ts';
export { MAX_IMPORT_BATCH, importTokens, type ImportOptions, type ImportOwner, type ImportRecord, type ImportResult, type ImportSummary } from './tokens/import-tokens.ts';
export { listTokens, getToken, getCurrentToken, type ListTokensQuery } from './tokens/list-tokens.ts';
export { updateToken, type TokenPatch } from './tokens/update-token.ts';
export { rotateToken, MAX_GRACE_PERIOD_SECONDS } from './tokens/rotate-token.ts';
export { revokeToken, revokeCurrentToken, revokeLeakedTokens, revokeLineage, type LeakFinding, type LeakReporter } from './tokens/revoke-token.ts';
export { actorForToken, authenticateToken } from './tokens/authenticate-token.ts';
export {
  authenticatePassword,
  csrfTokenFor,
  findLiveSession,
  isCsrfTokenValid,
  login,
  logout,
  resolveMembership,
  actorForMember,
  normalizeEmail,
  type StartedSession,
} from './auth/password-auth.ts';
export { addMember, acceptInvite, getMember, INVITATION_TTL_MS, listMembers, removeMember, updateMember, type AddMemberInput, type InviteAcceptance, type InvitedMember } from './members/members.ts';
export { createResource, deleteResource, listResources } from './resources/resources.ts';
export { createClient, deleteClient, getClient, listClients, updateClient } from './clients/clients.ts';
export { bootstrapOwner, createOrganization, getCurrentOrganization, updateCurrentOrganization, type BootstrapInput } from './organizations/organizations.ts';
export { listAuditEvents, type AuditQuery } from './audit/audit-log.ts';
export { VERIFY_CODES, type RateLimitState, type VerifiedToken, type VerifyCode, type VerifyRequest, type VerifyResult } from './verification/verify-result.ts';
export {
  MAX_REQUIRE_EXPRESSION_DEPTH,
  MAX_REQUIRE_EXPRESSION_LENGTH,
  evaluateRequire,
  formatRequireExpression,
  missingScopesFor,
  parseRequireExpression,
  requiredScopesOf,
  type RequireExpression,
} from './verification/require-expression.ts';
export {
  compileIpMatcher,
  clientIdOf,
  compileToken,
  decideVerification,
  isReusedAfterRotation,
  nextEpoch,
  refusal,
  type CompiledToken,
  type EntrySlot,
  type OwnerSnapshot,
  type VerifiableToken,
  type VerificationQuestion,
} from './verification/verify-token.ts';
