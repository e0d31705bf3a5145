// The storage port. The server implements it once with Kysely for SQLite and
// PostgreSQL; services only ever see this interface.
import type { Role } from '../roles.ts';
import type { TokenHashKind } from '../tokens/legacy-token.ts';
import type { TokenKind } from '../tokens/token-format.ts';
import type {
  ApiClient,
  AuditEvent,
  Invitation,
  Member,
  Membership,
  Organization,
  RateLimitSetting,
  Resource,
  Session,
  TokenPolicy,
  TokenRecord,
  TokenStatus,
  User,
} from '../types.ts';

/** Position after which a page starts: lists are ordered newest first, ties broken by id. */
export interface PageAfter {
  at: Date;
  id: string;
}

export interface PageRequest {
  after?: PageAfter | undefined;
  /** How many rows to return at most. */
  limit: number;
}

/** A page of the member list: a null `after.id` takes every row at `after.at` as not yet listed. */
export interface MemberPageRequest {
  after?: { at: Date; id: string | null } | undefined;
  limit: number;
}

export interface TokenFilter extends PageRequest {
  organizationId: string;
  ownerUserId?: string | undefined;
  clientId?: string | undefined;
  kind?: TokenKind | undefined;
  status?: TokenStatus | undefined;
  now: Date;
}

export interface AuditFilter extends PageRequest {
  organizationId: string;
  action?: string | undefined;
  actorId?: string | undefined;
  targetId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

export type NewToken = Omit<TokenRecord, 'resources' | 'lastUsedAt' | 'lastUsedIp'> & { resourceIds: string[] };

/** What an imported token carries besides a new one's fields: where it came from and how its digest was made. */
export interface ImportedKey {
  /** The caller's stable id for the key, unique per organization: a re-run of an import skips it. */
  externalId: string;
  hashKind: TokenHashKind;
}

export interface TokenChanges {
  name?: string;
  scopes?: string[];
  /** The whole ranked list; replaces the previous grants. */
  resourceIds?: string[];
  resourcesLimited?: boolean;
  disabledAt?: Date | null;
  disabledBy?: TokenRecord['disabledBy'];
  allowedIps?: string[];
  rateLimit?: TokenRecord['rateLimit'];
  remaining?: number | null;
  refill?: TokenRecord['refill'];
  /** Start of the refill period a new `remaining` belongs to. */
  quotaPeriodStart?: Date;
  metadata?: Record<string, unknown>;
}

export interface Store {
  /** Runs `work` in one transaction; everything it writes lands together or not at all. */
  transaction<T>(work: (store: Store) => Promise<T>): Promise<T>;

  countUsers(): Promise<number>;
  findUserById(id: string): Promise<User | null>;
  findUserByEmail(email: string): Promise<{ user: User; passwordHash: string | null } | null>;
  insertUser(user: User, passwordHash: string | null): Promise<void>;
  /** Sets the password and clears any pending invitation. */
  setUserPassword(userId: string, passwordHash: string): Promise<void>;
  setUserInvite(userId: string, inviteDigest: string, expiresAt: Date): Promise<void>;
  /** Clears and answers the user whose unexpired invitation has this digest. */
  consumeInvite(inviteDigest: string, now: Date): Promise<User | null>;

  insertOrganization(org: Organization): Promise<void>;
  /**
   * Inside a transaction: holds the organization's row until commit, so checks
   * like "name is free" or "one owner remains" cannot interleave with another
   * transaction's (PostgreSQL's read committed would let both pass).
   */
  lockOrganization(id: string): Promise<void>;
  findOrganization(id: string): Promise<Organization | null>;
  findOrganizationBySlug(slug: string): Promise<Organization | null>;
  updateOrganization(id: string, changes: { name?: string; tokenPolicy?: TokenPolicy }): Promise<void>;

  /** Memberships of a user, oldest first (the first is the default organization). */
  listMembershipsOfUser(userId: string): Promise<Array<Membership & { organization: Organization }>>;
  findMembership(organizationId: string, userId: string): Promise<Membership | null>;
  /** `after.id` null: everything created at `after.at` or before (the member list merges two kinds of rows). */
  listMembers(organizationId: string, page: MemberPageRequest): Promise<Member[]>;
  /** Whether the person with this (normalized) email is a member of the organization. */
  isMemberByEmail(organizationId: string, email: string): Promise<boolean>;
  countOwners(organizationId: string): Promise<number>;
  insertMembership(membership: Membership): Promise<void>;
  updateMembership(organizationId: string, userId: string, changes: { role?: Role; resourceIds?: string[] | 'all' }): Promise<void>;
  deleteMembership(organizationId: string, userId: string): Promise<void>;

  // Membership invitations (only the digest of an invitation's secret is kept)
  /** Stores an invitation, replacing any earlier one for the same organization and email. */
  replaceInvitation(invitation: Invitation, inviteDigest: string): Promise<void>;
  findInvitation(organizationId: string, id: string): Promise<Invitation | null>;
  /** Newest first; `after` as for listMembers. */
  listInvitations(organizationId: string, page: MemberPageRequest): Promise<Invitation[]>;
  deleteInvitation(organizationId: string, id: string): Promise<void>;
  /** Deletes and answers the unexpired invitation with this digest, in one statement. */
  consumeInvitation(inviteDigest: string, now: Date): Promise<Invitation | null>;

  insertResource(resource: Resource): Promise<void>;
  findResource(organizationId: string, id: string): Promise<Resource | null>;
  listResources(organizationId: string, page: PageRequest): Promise<Resource[]>;
  findResourcesByIds(organizationId: string, ids: readonly string[]): Promise<Resource[]>;
  findResourceByName(organizationId: string, type: string, name: string): Promise<Resource | null>;
  /** Deletes the resource with its token grants and membership limits. */
  deleteResource(organizationId: string, id: string): Promise<void>;

  insertClient(client: ApiClient): Promise<void>;
  findClient(organizationId: string, id: string): Promise<ApiClient | null>;
  findClientByName(organizationId: string, name: string): Promise<ApiClient | null>;
  listClients(organizationId: string, page: PageRequest): Promise<ApiClient[]>;
  updateClient(organizationId: string, id: string, changes: { name?: string; description?: string | null; rateLimit?: RateLimitSetting | null }): Promise<void>;
  markClientDeleted(organizationId: string, id: string, at: Date): Promise<void>;

  /** `imported` marks a token brought from another system (see ImportedKey). */
  insertToken(token: NewToken, imported?: ImportedKey): Promise<void>;
  /** The id of the organization's token imported under this external id, if any. */
  findTokenIdByExternalId(organizationId: string, externalId: string): Promise<string | null>;
  findToken(organizationId: string, id: string): Promise<TokenRecord | null>;
  /** One indexed read over the digests of every keyring version. */
  findTokenByDigests(digests: readonly string[]): Promise<TokenRecord | null>;
  listTokens(filter: TokenFilter): Promise<TokenRecord[]>;
  /** A live (not revoked, not rotated out, not expired) token of this owner with this name. */
  findLiveTokenByName(organizationId: string, owner: TokenRecord['owner'], name: string, now: Date): Promise<TokenRecord | null>;
  updateToken(id: string, changes: TokenChanges): Promise<void>;
  /** Records last use; callers write it at most once a minute per token. */
  touchToken(id: string, at: Date, ip: string | null): Promise<void>;
  rehashToken(id: string, digest: string, secretVersion: string): Promise<void>;
  /** Marks a live token rotated out; answers false, changing nothing, when it was rotated or revoked meanwhile. */
  markTokenRotated(id: string, at: Date, graceUntil: Date): Promise<boolean>;
  /** Revokes the given tokens that are not revoked yet; answers the ids it revoked. */
  revokeTokens(ids: readonly string[], at: Date, reason: string): Promise<string[]>;
  /** Ids of tokens in these lineages or owned by this user/client in this organization that are not revoked. */
  findUnrevokedTokenIds(query: { lineageId?: string; clientId?: string; organizationId?: string; userId?: string }): Promise<string[]>;

  insertAuditEvent(event: AuditEvent): Promise<void>;
  listAuditEvents(filter: AuditFilter): Promise<AuditEvent[]>;

  insertSession(session: Session): Promise<void>;
  findSession(id: string): Promise<Session | null>;
  deleteSession(id: string): Promise<void>;
  /** Removes sessions that ended at or before `now`; answers how many. */
  deleteExpiredSessions(now: Date): Promise<number>;
}

/** Password hashing is a port so the domain stays free of native modules. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}
