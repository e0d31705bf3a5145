import { ConflictError, NotFoundError } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, DEFAULT_PAGE_LIMIT, toPage } from '../pagination.ts';
import { canAccessResource } from '../services/access.ts';
import { auditEvent, publishSafely, type ServiceDeps } from '../services/context.ts';
import type { Actor, Page, Resource } from '../types.ts';

/** Lists the resources the actor can reach (all of them, unless the actor is limited). */
export async function listResources(deps: ServiceDeps, actor: Actor, query: { cursor?: string | undefined; limit?: number | undefined }): Promise<Page<Resource>> {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const page = { after: decodeCursor(query.cursor), limit: limit + 1 };
  const rows = await deps.store.listResources(actor.organizationId, page);
  const visible = actor.resourceIds === 'all' ? rows : rows.filter((resource) => canAccessResource(actor, resource.id));
  // Filtering can shorten the page; the cursor still follows the unfiltered rows.
  const result = toPage(rows, limit, (resource) => ({ at: resource.createdAt, id: resource.id }));
  return { items: result.items.filter((item) => visible.includes(item)), nextCursor: result.nextCursor };
}

export async function createResource(deps: ServiceDeps, actor: Actor, input: { type: string; name: string }): Promise<Resource> {
  const resource: Resource = { id: newId('res'), organizationId: actor.organizationId, type: input.type, name: input.name, createdAt: deps.now() };
  await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    if (await store.findResourceByName(actor.organizationId, input.type, input.name)) throw new ConflictError(`A ${input.type} named "${input.name}" already exists.`);
    await store.insertResource(resource);
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'resource.created', organizationId: actor.organizationId, target: { type: 'resource', id: resource.id }, details: { type: input.type, name: input.name } }),
    );
  });
  return resource;
}

/** Deleting a resource removes it from every token and membership at once. */
export async function deleteResource(deps: ServiceDeps, actor: Actor, resourceId: string): Promise<void> {
  await deps.store.transaction(async (store) => {
    const resource = await store.findResource(actor.organizationId, resourceId);
    if (!resource || !canAccessResource(actor, resource.id)) throw new NotFoundError('resource');
    await store.deleteResource(actor.organizationId, resource.id);
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'resource.deleted', organizationId: actor.organizationId, target: { type: 'resource', id: resource.id }, details: { type: resource.type, name: resource.name } }),
    );
  });
  await publishSafely(deps, { type: 'organization.changed', organizationId: actor.organizationId });
}
