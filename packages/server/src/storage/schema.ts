// Table types as the code sees them through CamelCasePlugin (columns are
// snake_case in SQL). Instants read back as Date on PostgreSQL and as ISO
// strings on SQLite: DialectCapabilities.readTimestamp turns both into Dates.
// Flags are integers 0/1 on both dialects; JSON lives in text columns.
import type { ColumnType } from 'kysely';

export type Timestamp = ColumnType<Date | string, Date, Date>;
export type NullableTimestamp = ColumnType<Date | string | null, Date | null, Date | null>;
/** 0 or 1. */
export type Flag = number;

export interface UsersTable {
  id: string;
  email: string;
  passwordHash: string | null;
  inviteDigest: string | null;
  inviteExpiresAt: NullableTimestamp;
  createdAt: Timestamp;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  slug: string;
  maxLifetimeDays: number;
  allowNoExpiry: Flag;
  requireIpAllowlist: Flag;
  /** Revoke live tokens unused for this many days; null = never (migration 0008). */
  revokeUnusedAfterDays: number | null;
  /** Purge revoked/expired tokens, audit events, usage and sent webhooks older than this; null = keep forever. */
  retentionDays: number | null;
  disabledAt: NullableTimestamp;
  createdAt: Timestamp;
}

export interface MembershipsTable {
  organizationId: string;
  userId: string;
  role: string;
  allResources: Flag;
  createdAt: Timestamp;
}

export interface MembershipInvitationsTable {
  id: string;
  organizationId: string;
  email: string;
  role: string;
  /** JSON array of resource ids; null = all. */
  resourceIds: string | null;
  inviteDigest: string;
  expiresAt: Timestamp;
  createdAt: Timestamp;
}

export interface ResourcesTable {
  id: string;
  organizationId: string;
  type: string;
  name: string;
  createdAt: Timestamp;
}

export interface MembershipResourcesTable {
  organizationId: string;
  userId: string;
  resourceId: string;
}

export interface ApiClientsTable {
  id: string;
  organizationId: string;
  name: string;
  description: string | null;
  createdAt: Timestamp;
  deletedAt: NullableTimestamp;
  /** JSON RateLimitSetting or null: shared by all the client's tokens. */
  rateLimit: string | null;
}

export interface TokensTable {
  id: string;
  organizationId: string;
  kind: string;
  ownerType: string;
  ownerId: string;
  name: string;
  hint: string;
  digest: string;
  secretVersion: string;
  /** JSON array of scope strings. */
  scopes: string;
  permission: string;
  resourcesLimited: Flag;
  expiresAt: NullableTimestamp;
  disabledAt: NullableTimestamp;
  /** 'user' | 'token' | 'system'; with the two below, null unless disabled (migration 0002). */
  disabledByType: string | null;
  disabledById: string | null;
  disabledByPermission: string | null;
  revokedAt: NullableTimestamp;
  revokedReason: string | null;
  /** JSON array of CIDRs. */
  allowedIps: string;
  /** JSON RateLimitSetting or null. */
  rateLimit: string | null;
  /** JSON object. */
  metadata: string;
  remaining: number | null;
  /** JSON Refill or null. */
  refill: string | null;
  lineageId: string;
  rotatedFrom: string | null;
  rotatedAt: NullableTimestamp;
  graceUntil: NullableTimestamp;
  createdAt: Timestamp;
  lastUsedAt: NullableTimestamp;
  lastUsedIp: string | null;
  /** Start of the refill period that `remaining` belongs to. */
  quotaPeriodStart: NullableTimestamp;
  /** 'hmac' (under the keyring) or 'sha256' (a key imported as a hash, until its first use); migration 0009. */
  hashKind: ColumnType<string, string | undefined, string>;
  /** The importer's stable id for an imported key, unique per organization; null for tokens made here. */
  externalId: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface TokenResourcesTable {
  tokenId: string;
  resourceId: string;
  rank: number;
}

export interface AuditEventsTable {
  id: string;
  organizationId: string | null;
  at: Timestamp;
  action: string;
  actorType: string;
  actorId: string | null;
  authMethod: string;
  targetType: string | null;
  targetId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  /** JSON object. */
  details: string;
}

export interface SessionsTable {
  /** The sha256 digest of the session secret; the secret itself is never stored. */
  id: string;
  userId: string;
  csrfDigest: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
}

export interface WebhookEndpointsTable {
  id: string;
  organizationId: string;
  url: string;
  description: string | null;
  /** JSON array of event types. */
  events: string;
  enabled: Flag;
  /** `<keyring version>:<iv>.<ciphertext>.<tag>`, AES-256-GCM (webhooks/secret-box.ts). */
  secretCiphertext: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface WebhookEventsTable {
  id: string;
  organizationId: string;
  type: string;
  /** JSON: the `data` of the delivered body. */
  payload: string;
  createdAt: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  eventId: string;
  endpointId: string;
  organizationId: string;
  /** 'pending' | 'delivered' | 'failed'. */
  status: string;
  attempts: number;
  nextAttemptAt: Timestamp;
  leaseOwner: string | null;
  leaseUntil: NullableTimestamp;
  lastAttemptAt: NullableTimestamp;
  lastStatusCode: number | null;
  lastError: string | null;
  lastDurationMs: number | null;
  deliveredAt: NullableTimestamp;
  createdAt: Timestamp;
}

export interface TokenExpiryWarningsTable {
  tokenId: string;
  thresholdDays: number;
  sentAt: Timestamp;
}

export interface JobLeasesTable {
  name: string;
  owner: string;
  leaseUntil: Timestamp;
}

export interface Schema {
  users: UsersTable;
  organizations: OrganizationsTable;
  memberships: MembershipsTable;
  membershipInvitations: MembershipInvitationsTable;
  resources: ResourcesTable;
  membershipResources: MembershipResourcesTable;
  apiClients: ApiClientsTable;
  tokens: TokensTable;
  tokenResources: TokenResourcesTable;
  auditEvents: AuditEventsTable;
  sessions: SessionsTable;
  webhookEndpoints: WebhookEndpointsTable;
  webhookEvents: WebhookEventsTable;
  webhookDeliveries: WebhookDeliveriesTable;
  tokenExpiryWarnings: TokenExpiryWarningsTable;
  jobLeases: JobLeasesTable;
}
