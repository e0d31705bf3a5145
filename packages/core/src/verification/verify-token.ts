// The one verification decision (SPEC §4). Every entry point (POST /verify,
// introspection, forward-auth, management bearer authentication, the SDK)
// asks it, so none of them can disagree. It is pure: the server compiles a
// token once per cache fill and then decides with no parsing and no I/O.
import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../net/cidr.ts';
import { effectiveResources, effectiveScopes, type OwnerAccess } from '../permissions/effective-permission.ts';
import { lowerRole, type Role } from '../roles.ts';
import type { ScopeCatalog } from '../scopes/scope-catalog.ts';
import type { RateLimitSetting, ResourceRef, TokenRecord } from '../types.ts';
import type { VerifiedToken, VerifyCode, VerifyResult } from './verify-result.ts';

/** The owner's access now, with the names of a limited member's resources (for the answer's ranked list). */
export interface OwnerSnapshot extends OwnerAccess {
  /** Resources a limited member may reach, with names; empty when `resourceIds` is `all`. */
  resources: readonly ResourceRef[];
  /** The person's email, for a personal token (introspection's `username`). */
  email?: string | null;
  /** An API client's own rate limit, shared by all its tokens. */
  clientRateLimit?: RateLimitSetting | null;
}

/**
 * What a compiled token keeps of its stored record: the fields that the
 * decision, the counters, management authentication (`actorForToken`), the
 * lazy re-hash and reuse detection (`revokeLineage`) read. A cache holds one
 * per entry, so the rest of the row (hint, last use, rotation bookkeeping,
 * revocation and disabling details) stays in storage; the answers' fields are
 * in `verified`. The expiry is a number, not the row's 96-byte `Date`.
 */
export type VerifiableToken = Pick<
  TokenRecord,
  | 'id'
  | 'organizationId'
  | 'kind'
  | 'owner'
  | 'digest'
  | 'secretVersion'
  | 'scopes'
  | 'permission'
  | 'resources'
  | 'resourcesLimited'
  | 'disabledAt'
  | 'revokedAt'
  | 'allowedIps'
  | 'rateLimit'
  | 'remaining'
  | 'refill'
  | 'lineageId'
> & {
  /** When the token expires (ms), or null. */
  readonly expiresAtMs: number | null;
};

/**
 * A token and its owner's current access, compiled for repeated decisions.
 * One flat object: the record's fields and what was compiled from them sit
 * side by side, because a cache holds 100,000 of these and every object costs
 * a header and a pointer to it.
 */
export interface CompiledToken extends VerifiableToken {
  /** The owner's access now; null when the owner was removed, the client deleted or the organization disabled. */
  readonly access: OwnerSnapshot | null;
  /**
   * When the token was created, in whole seconds (introspection's `iat`): not the
   * record's 96-byte `Date`, and a small integer V8 stores in the field itself
   * (milliseconds would be a separate 16-byte number).
   */
  readonly createdAtSeconds: number;
  /** When a rotated-out secret stops working (ms), or null if not rotated out. */
  readonly rotatedOutAtMs: number | null;
  readonly scopeSet: ReadonlySet<string>;
  /** Null = every resource the owner reaches (checked against the organization's resources). */
  readonly resourceSet: ReadonlySet<string> | null;
  readonly ipMatcher: ((ip: string) => boolean) | null;
  /** The answer's token object, built once. */
  readonly verified: VerifiedToken;
  /**
   * A cache's bookkeeping of this entry, kept on the entry itself: under load,
   * a side table keyed by token (a map of 10,000 entries) costs a random memory
   * read on every verification. The server keeps its pending usage counter
   * and its pending last use here, and the cache the generation at which it
   * read the token. The decision never reads them; {@link compileToken}
   * leaves them empty.
   */
  usageSlot: EntrySlot | null;
  lastUseSlot: EntrySlot | null;
  cachedAtGeneration: number;
}

/**
 * A buffer's record kept on the cache entry it counts for: current only while
 * `epoch` is the buffer's own (a buffer starts a new epoch whenever its records
 * may have left it, so a stale slot is never counted into).
 */
export interface EntrySlot {
  epoch: number;
}

let lastEpoch = 0;
/** A new epoch, distinct across every buffer in the process: one buffer's slot never looks current to another. */
export function nextEpoch(): number {
  return ++lastEpoch;
}

/** What a decision is asked, already parsed (a `require` expression arrives compiled). */
export interface VerificationQuestion {
  /** Each listed scope is required. */
  scopes?: readonly string[] | undefined;
  /** A compiled `require` expression: true when the held scopes satisfy it. */
  require?: ((held: ReadonlySet<string>) => boolean) | undefined;
  resource?: string | undefined;
  ip?: string | null | undefined;
  /** The organization the asking resource server belongs to: another organization's token is NOT_FOUND. */
  organizationId?: string | undefined;
  /**
   * For a token reaching every resource: whether a resource id belongs to its organization.
   * Without it, any resource id passes for such a token.
   */
  resourceExists?: ((organizationId: string, resourceId: string) => boolean) | undefined;
}

/**
 * Compiles an IP allowlist into one matcher. node's BlockList does the
 * matching; IPv4-mapped IPv6 clients match IPv4 ranges.
 */
export function compileIpMatcher(cidrs: readonly string[]): ((ip: string) => boolean) | null {
  if (cidrs.length === 0) return null;
  const list = new BlockList();
  for (const value of cidrs) {
    const cidr = parseCidr(value);
    if (cidr) list.addSubnet(cidr.address, cidr.prefixLength, cidr.family === 4 ? 'ipv4' : 'ipv6');
  }
  return (ip) => {
    if (typeof ip !== 'string' || ip.includes('%')) return false;
    const family = isIP(ip);
    if (family === 0) return false;
    return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

// Most tokens share a handful of scope lists: one frozen list and Set per
// distinct list keeps 100,000 cached tokens from holding 100,000 Sets.
const MAX_INTERNED_SCOPE_LISTS = 10_000;
const internedScopes = new Map<string, { list: string[]; set: ReadonlySet<string> }>();
const NO_RESOURCES: ResourceRef[] = Object.freeze([]) as unknown as ResourceRef[];

function internScopes(scopes: string[]): { list: string[]; set: ReadonlySet<string> } {
  const key = scopes.join(' ');
  let interned = internedScopes.get(key);
  if (!interned) {
    interned = { list: Object.freeze([...scopes]) as string[], set: new Set(scopes) };
    if (internedScopes.size < MAX_INTERNED_SCOPE_LISTS) internedScopes.set(key, interned);
  }
  return interned;
}

// Expanding patterns against the catalog and capping them by role is most of
// compiling a token; its result depends only on the catalog, the granted
// patterns and the owner's role, which few tokens differ in.
const effectiveScopeMemo = new WeakMap<ScopeCatalog, Map<string, { list: string[]; set: ReadonlySet<string> }>>();

function effectiveScopesOf(catalog: ScopeCatalog, granted: readonly string[], role: Role): { list: string[]; set: ReadonlySet<string> } {
  let memo = effectiveScopeMemo.get(catalog);
  if (!memo) effectiveScopeMemo.set(catalog, (memo = new Map()));
  const key = `${role}\u0000${granted.join(' ')}`;
  let scopes = memo.get(key);
  if (!scopes) {
    scopes = internScopes(effectiveScopes(catalog, granted, role));
    if (memo.size < MAX_INTERNED_SCOPE_LISTS) memo.set(key, scopes);
  }
  return scopes;
}

const NO_SCOPES: string[] = [];

/** Builds what every later decision needs from a stored token and its owner's current access. */
export function compileToken(catalog: ScopeCatalog, token: TokenRecord, owner: OwnerSnapshot | null): CompiledToken {
  // Capped by the owner's current access (SPEC §1); an owner without access leaves nothing.
  const scopes = owner ? effectiveScopesOf(catalog, token.scopes, owner.role) : internScopes(NO_SCOPES);
  const permission = owner ? lowerRole(token.permission, owner.role) : token.permission;
  const granted = owner ? effectiveResources(token.resources.map((r) => r.id), owner.resourceIds) : [];
  // A token whose granted resources were all deleted reaches none, not all.
  const resourceIds = token.resourcesLimited && token.resources.length === 0 ? [] : granted;
  let resources = NO_RESOURCES;
  if (resourceIds !== 'all' && resourceIds.length > 0) {
    const names = new Map<string, ResourceRef>([...(owner?.resources ?? []), ...token.resources].map((r) => [r.id, r]));
    resources = resourceIds.map((id) => names.get(id) ?? { id, type: 'unknown', name: id });
  }
  const rotatedOutAtMs = token.rotatedAt ? (token.graceUntil ?? token.rotatedAt).getTime() : null;
  const expiresAtMs = token.expiresAt ? token.expiresAt.getTime() : null;
  return {
    // Listed field by field rather than kept whole: a stored row has 29 fields.
    id: token.id,
    organizationId: token.organizationId,
    kind: token.kind,
    owner: token.owner,
    digest: token.digest,
    secretVersion: token.secretVersion,
    scopes: token.scopes,
    permission: token.permission,
    resources: token.resources,
    resourcesLimited: token.resourcesLimited,
    expiresAtMs,
    disabledAt: token.disabledAt,
    revokedAt: token.revokedAt,
    allowedIps: token.allowedIps,
    rateLimit: token.rateLimit,
    remaining: token.remaining,
    refill: token.refill,
    lineageId: token.lineageId,
    access: owner,
    createdAtSeconds: Math.floor(token.createdAt.getTime() / 1000),
    rotatedOutAtMs,
    scopeSet: scopes.set,
    resourceSet: resourceIds === 'all' ? null : new Set(resourceIds),
    ipMatcher: compileIpMatcher(token.allowedIps),
    verified: {
      id: token.id,
      name: token.name,
      kind: token.kind,
      owner: token.owner,
      organizationId: token.organizationId,
      scopes: scopes.list,
      permission,
      resources,
      expiresAt: token.expiresAt ? token.expiresAt.toISOString() : null,
      metadata: token.metadata,
    },
    usageSlot: null,
    lastUseSlot: null,
    cachedAtGeneration: 0,
  };
}

const refusals = new Map<VerifyCode, VerifyResult>();
/** Refusals carry no token: they are shared, frozen objects. */
export function refusal(code: Exclude<VerifyCode, 'VALID'>): VerifyResult {
  let result = refusals.get(code);
  if (!result) {
    result = Object.freeze({ valid: false, code });
    refusals.set(code, result);
  }
  return result;
}

/** The API client owning a service token (null for a personal token). */
export function clientIdOf(compiled: CompiledToken): string | null {
  return compiled.owner.type === 'client' ? compiled.owner.id : null;
}

/** Whether a rotated-out secret was presented after its grace period (reuse: the lineage gets revoked). */
export function isReusedAfterRotation(compiled: CompiledToken, nowMs: number): boolean {
  return compiled.rotatedOutAtMs !== null && compiled.rotatedOutAtMs <= nowMs && compiled.revokedAt === null;
}

/**
 * Decides everything that needs no counter: existence, state, address, scopes
 * and resource. Rate limits and quotas come after a VALID here, because only
 * a request that would otherwise pass should spend them.
 */
export function decideVerification(compiled: CompiledToken | null, question: VerificationQuestion, nowMs: number): VerifyResult {
  if (!compiled || !compiled.access) return refusal('NOT_FOUND');
  const token = compiled;
  // Never a hint that another organization's token exists.
  if (question.organizationId !== undefined && token.organizationId !== question.organizationId) return refusal('NOT_FOUND');
  if (token.revokedAt !== null) return refusal('REVOKED');
  if (compiled.rotatedOutAtMs !== null && compiled.rotatedOutAtMs <= nowMs) return refusal('REVOKED');
  if (token.expiresAtMs !== null && token.expiresAtMs <= nowMs) return refusal('EXPIRED');
  if (token.disabledAt !== null) return refusal('DISABLED');
  if (compiled.ipMatcher && (!question.ip || !compiled.ipMatcher(question.ip))) return refusal('IP_NOT_ALLOWED');
  if (question.scopes) {
    for (const scope of question.scopes) if (!compiled.scopeSet.has(scope)) return refusal('INSUFFICIENT_SCOPE');
  }
  if (question.require && !question.require(compiled.scopeSet)) return refusal('INSUFFICIENT_SCOPE');
  if (question.resource !== undefined) {
    const allowed = compiled.resourceSet
      ? compiled.resourceSet.has(question.resource)
      : !question.resourceExists || question.resourceExists(token.organizationId, question.resource);
    if (!allowed) return refusal('FORBIDDEN_RESOURCE');
  }
  return { valid: true, code: 'VALID', token: compiled.verified };
}
