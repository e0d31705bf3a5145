// The audit events of a time range, oldest first, a page at a time: the
// export streams them without ever holding more than one page in memory.
import type { AuditEvent } from '@keyward/core';
import type { Kysely, Selectable } from 'kysely';
import { auditEventFromRow } from './audit-rows.ts';
import type { TimestampReader } from './row-values.ts';
import type { AuditEventsTable, Schema } from './schema.ts';

export const AUDIT_EXPORT_PAGE_SIZE = 500;

/**
 * Yields the organization's events with `from <= at < to`, ordered by (at, id).
 * The cursor is the last (at, id) seen, so events written during the export
 * neither repeat nor shift a page; each page is its own short query, so no
 * connection is held while the client reads slowly.
 */
export async function* auditEventsInRange(
  db: Kysely<Schema>,
  read: TimestampReader,
  range: { organizationId: string; from: Date; to: Date },
  pageSize = AUDIT_EXPORT_PAGE_SIZE,
): AsyncGenerator<AuditEvent> {
  let after: { at: Date; id: string } | null = null;
  for (;;) {
    const cursor: { at: Date; id: string } | null = after;
    const rows: Array<Selectable<AuditEventsTable>> = await db
      .selectFrom('auditEvents')
      .selectAll()
      .where('organizationId', '=', range.organizationId)
      .where('at', '>=', range.from)
      .where('at', '<', range.to)
      .$if(cursor !== null, (query) => query.where((eb) => eb.or([eb('at', '>', cursor!.at), eb.and([eb('at', '=', cursor!.at), eb('id', '>', cursor!.id)])])))
      .orderBy('at')
      .orderBy('id')
      .limit(pageSize)
      .execute();
    for (const row of rows) yield auditEventFromRow(row, read);
    if (rows.length < pageSize) return;
    const last: Selectable<AuditEventsTable> = rows[rows.length - 1]!;
    after = { at: read(last.at), id: last.id };
  }
}
