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
export { decodeCursor, encodeCursor, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from './pagination.ts';
export type { EventBus, KeywardEvent } from './ports/event-bus.ts';
export type { AuditFilter, NewToken, PageAfter, PageRequest, PasswordHasher, Store, TokenChanges, TokenFilter } from './ports/store.ts';
export { auditEvent, SYSTEM_REQUEST, type RequestFacts, type ServiceDeps } from './services/context.ts';
export { canManageToken, canViewToken, hasManagerScope, hasScope, requirePermission, requireScope, requireUser } from './services/access.ts';
export { TOKEN_NAME_PATTERN, MAX_METADATA_BYTES, type TokenSettingsInput } from './tokens/token-settings.ts';
export { createToken, type IssuedToken, type TokenTarget } from './tokens/create-token.ts';
export { listTokens, getToken, getCurrentToken, type ListTokensQuery } from './tokens/list-tokens.ts';
export { updateToken, type TokenPatch } from './tokens/update-token.ts';
export { rotateToken, MAX_GRACE_PERIOD_SECONDS } from './tokens/rotate-token.ts';
export { revokeToken, revokeCurrentToken, revokeLeakedTokens } from './tokens/revoke-token.ts';
export { authenticateToken } from './tokens/authenticate-token.ts';
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
export { addMember, acceptInvite, getMember, listMembers, removeMember, updateMember, type AddMemberInput } from './members/members.ts';
export { createResource, deleteResource, listResources } from './resources/resources.ts';
export { createClient, deleteClient, getClient, listClients, updateClient } from './clients/clients.ts';
export { bootstrapOwner, createOrganization, getCurrentOrganization, updateCurrentOrganization, type BootstrapInput } from './organizations/organizations.ts';
export { listAuditEvents, type AuditQuery } from './audit/audit-log.ts';
