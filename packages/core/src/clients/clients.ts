import { ConflictError, NotFoundError } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, DEFAULT_PAGE_LIMIT, toPage } from '../pagination.ts';
import type { Store } from '../ports/store.ts';
import { auditEvent, publishSafely, type ServiceDeps } from '../services/context.ts';
import type { Actor, ApiClient, Page, RateLimitSetting } from '../types.ts';

async function findLiveClient(store: Store, actor: Actor, clientId: string): Promise<ApiClient> {
  const client = await store.findClient(actor.organizationId, clientId);
  if (!client || client.deletedAt) throw new NotFoundError('client');
  return client;
}

async function ensureClientNameIsFree(store: Store, actor: Actor, name: string, exceptId?: string): Promise<void> {
  const existing = await store.findClientByName(actor.organizationId, name);
  if (existing && existing.id !== exceptId) throw new ConflictError(`A client named "${name}" already exists.`);
}

export async function listClients(deps: ServiceDeps, actor: Actor, query: { cursor?: string | undefined; limit?: number | undefined }): Promise<Page<ApiClient>> {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const rows = await deps.store.listClients(actor.organizationId, { after: decodeCursor(query.cursor), limit: limit + 1 });
  return toPage(rows, limit, (client) => ({ at: client.createdAt, id: client.id }));
}

export async function getClient(deps: ServiceDeps, actor: Actor, clientId: string): Promise<ApiClient> {
  return findLiveClient(deps.store, actor, clientId);
}

export async function createClient(
  deps: ServiceDeps,
  actor: Actor,
  input: { name: string; description?: string | null | undefined; rateLimit?: RateLimitSetting | null | undefined },
): Promise<ApiClient> {
  const client: ApiClient = {
    id: newId('cli'),
    organizationId: actor.organizationId,
    name: input.name,
    description: input.description ?? null,
    createdAt: deps.now(),
    deletedAt: null,
    rateLimit: input.rateLimit ?? null,
  };
  await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    await ensureClientNameIsFree(store, actor, input.name);
    await store.insertClient(client);
    await store.insertAuditEvent(auditEvent(deps, actor, { action: 'client.created', organizationId: actor.organizationId, target: { type: 'client', id: client.id }, details: { name: client.name } }));
  });
  return client;
}

export async function updateClient(
  deps: ServiceDeps,
  actor: Actor,
  clientId: string,
  changes: { name?: string | undefined; description?: string | null | undefined; rateLimit?: RateLimitSetting | null | undefined },
): Promise<ApiClient> {
  const updated = await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    await findLiveClient(store, actor, clientId);
    if (changes.name !== undefined) await ensureClientNameIsFree(store, actor, changes.name, clientId);
    await store.updateClient(actor.organizationId, clientId, changes);
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'client.updated', organizationId: actor.organizationId, target: { type: 'client', id: clientId }, details: { changed: Object.keys(changes) } }),
    );
    return findLiveClient(store, actor, clientId);
  });
  // The client's limit is compiled into its tokens' cache entries.
  if (changes.rateLimit !== undefined) await publishSafely(deps, { type: 'client.changed', organizationId: actor.organizationId, clientId });
  return updated;
}

/** Deleting a client revokes all its tokens; the client row stays for the audit trail. */
export async function deleteClient(deps: ServiceDeps, actor: Actor, clientId: string): Promise<void> {
  const revoked = await deps.store.transaction(async (store) => {
    await findLiveClient(store, actor, clientId);
    const ids = await store.findUnrevokedTokenIds({ organizationId: actor.organizationId, clientId });
    const revokedIds = await store.revokeTokens(ids, deps.now(), 'client_deleted');
    await store.markClientDeleted(actor.organizationId, clientId, deps.now());
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'client.deleted', organizationId: actor.organizationId, target: { type: 'client', id: clientId }, details: { revokedTokenIds: revokedIds } }),
    );
    return revokedIds;
  });
  await publishSafely(deps, { type: 'client.changed', organizationId: actor.organizationId, clientId });
  if (revoked.length > 0) await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: revoked });
}
