import { decodeCursor, DEFAULT_PAGE_LIMIT, toPage } from '../pagination.ts';
import type { ServiceDeps } from '../services/context.ts';
import type { Actor, AuditEvent, Page } from '../types.ts';

export interface AuditQuery {
  action?: string | undefined;
  actorId?: string | undefined;
  targetId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

/** The organization's audit trail, newest first. */
export async function listAuditEvents(deps: ServiceDeps, actor: Actor, query: AuditQuery): Promise<Page<AuditEvent>> {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const rows = await deps.store.listAuditEvents({
    organizationId: actor.organizationId,
    action: query.action,
    actorId: query.actorId,
    targetId: query.targetId,
    since: query.since,
    until: query.until,
    after: decodeCursor(query.cursor),
    limit: limit + 1,
  });
  return toPage(rows, limit, (event) => ({ at: event.at, id: event.id }));
}
