// The records the domain works with. Storage maps rows to these; the HTTP
// layer maps these to the API shapes of SPEC section 11.
import type { Role } from './roles.ts';
import type { TokenKind } from './tokens/token-format.ts';

export interface TokenPolicy {
  maxLifetimeDays: number;
  allowNoExpiry: boolean;
  requireIpAllowlist: boolean;
  /** Live tokens not used for this many days (since creation when never used) are revoked; null = never. */
  revokeUnusedAfterDays: number | null;
  /** Revoked and expired tokens, audit events, usage counts and sent webhooks are purged after this many days; null = kept forever. */
  retentionDays: number | null;
}

export const DEFAULT_TOKEN_POLICY: TokenPolicy = { maxLifetimeDays: 365, allowNoExpiry: false, requireIpAllowlist: false, revokeUnusedAfterDays: null, retentionDays: null };

export interface Organization {
  id: string;
  name: string;
  slug: string;
  tokenPolicy: TokenPolicy;
  disabledAt: Date | null;
  createdAt: Date;
}

export interface User {
  id: string;
  email: string;
  createdAt: Date;
}

export interface Membership {
  organizationId: string;
  userId: string;
  role: Role;
  /** The resources this member may touch; `all` unless limited. */
  resourceIds: string[] | 'all';
  createdAt: Date;
}

export interface Member extends Membership {
  email: string;
  hasPassword: boolean;
}

/**
 * An invitation to join an organization, for an email. Nobody is a member
 * until the person accepts it, and it looks the same whether or not the email
 * has an account, so inviting cannot tell who has one.
 */
export interface Invitation {
  id: string;
  organizationId: string;
  /** Normalized (trimmed, lower case). */
  email: string;
  role: Role;
  /** The resources the member will have; `all` unless limited. */
  resourceIds: string[] | 'all';
  expiresAt: Date;
  createdAt: Date;
}

/** One entry of the member list: a member, or a pending invitation. */
export type MemberListItem = { kind: 'member'; member: Member } | { kind: 'invitation'; invitation: Invitation };

export interface Resource {
  id: string;
  organizationId: string;
  type: string;
  name: string;
  createdAt: Date;
}

export interface ResourceRef {
  id: string;
  type: string;
  name: string;
}

export interface ApiClient {
  id: string;
  organizationId: string;
  name: string;
  description: string | null;
  createdAt: Date;
  deletedAt: Date | null;
  /** Shared by all the client's service tokens, on top of each token's own limit. */
  rateLimit: RateLimitSetting | null;
}

export interface RateLimitSetting {
  limit: number;
  windowSeconds: number;
}

export interface Refill {
  amount: number;
  interval: 'daily' | 'monthly';
}

export interface TokenOwner {
  type: 'user' | 'client';
  id: string;
}

/** Who disabled a token, and with what permission level: re-enabling it needs at least as much. */
export interface DisabledBy {
  /** Who acted, as in the audit log: a person (session or password flow) or a token. */
  type: 'user' | 'token' | 'system';
  id: string | null;
  /** Their effective permission level when they disabled it. */
  permission: Role;
}

export interface TokenRecord {
  id: string;
  organizationId: string;
  kind: TokenKind;
  owner: TokenOwner;
  name: string;
  hint: string;
  digest: string;
  secretVersion: string;
  scopes: string[];
  permission: Role;
  /** Ranked resource grants: the first one that applies wins. Empty = all the owner can access. */
  resources: ResourceRef[];
  /** True when the token was granted a list of resources: if they are all deleted, it reaches none (not all). */
  resourcesLimited: boolean;
  expiresAt: Date | null;
  disabledAt: Date | null;
  /** Set while disabled (null for tokens disabled before this was recorded). */
  disabledBy: DisabledBy | null;
  revokedAt: Date | null;
  revokedReason: string | null;
  allowedIps: string[];
  rateLimit: RateLimitSetting | null;
  metadata: Record<string, unknown>;
  remaining: number | null;
  refill: Refill | null;
  /** Every token rotated from the same original shares its lineage id. */
  lineageId: string;
  rotatedFrom: string | null;
  /** Set on a token once it has been rotated out; it stays valid until graceUntil. */
  rotatedAt: Date | null;
  graceUntil: Date | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  lastUsedIp: string | null;
}

export type TokenStatus = 'active' | 'expired' | 'revoked' | 'disabled';

/** A rotated-out token past its grace period counts as revoked. */
export function tokenStatus(token: TokenRecord, now: Date): TokenStatus {
  if (token.revokedAt) return 'revoked';
  if (token.rotatedAt && (!token.graceUntil || token.graceUntil <= now)) return 'revoked';
  if (token.expiresAt && token.expiresAt <= now) return 'expired';
  if (token.disabledAt) return 'disabled';
  return 'active';
}

export function isRotatedOut(token: TokenRecord, now: Date): boolean {
  return token.rotatedAt !== null && (!token.graceUntil || token.graceUntil <= now);
}

export type AuthMethod = 'session' | 'personal_token' | 'client_token' | 'password' | 'system';

/** The token an actor authenticated with, and the restrictions it carries. */
export interface ActorToken {
  id: string;
  kind: TokenKind;
  clientId: string | null;
  /** Normalized CIDRs; empty = any address. */
  allowedIps: string[];
  expiresAt: Date | null;
  rateLimit: RateLimitSetting | null;
  /** Quota credits left when the request was authenticated; null = no quota. */
  remaining: number | null;
  refill: Refill | null;
}

/** Who is acting, in which organization, and with what effective rights. */
export interface Actor {
  organizationId: string;
  authMethod: AuthMethod;
  /** The person behind a session, password or personal token; null for client tokens and the system. */
  user: { id: string; role: Role; resourceIds: string[] | 'all' } | null;
  /** The token used, when the actor authenticated with one, with its restrictions: what it creates may be no looser. */
  token: ActorToken | null;
  /** Concrete scopes the actor holds now (role-capped). */
  scopes: string[];
  permission: Role;
  resourceIds: string[] | 'all';
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

export interface AuditEvent {
  id: string;
  at: Date;
  action: string;
  actor: { type: 'user' | 'token' | 'system'; id: string | null };
  authMethod: AuthMethod;
  organizationId: string | null;
  target: { type: string; id: string } | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Session {
  id: string;
  userId: string;
  csrfDigest: string;
  createdAt: Date;
  expiresAt: Date;
}
