// audit_events rows ↔ records.
import type { Insertable, Selectable } from 'kysely';
import type { AuditEvent } from '@keyward/core';
import { fromJson, toJson, type TimestampReader } from './row-values.ts';
import type { AuditEventsTable } from './schema.ts';

export function auditEventFromRow(row: Selectable<AuditEventsTable>, read: TimestampReader): AuditEvent {
  return {
    id: row.id,
    at: read(row.at),
    action: row.action,
    actor: { type: row.actorType as AuditEvent['actor']['type'], id: row.actorId },
    authMethod: row.authMethod as AuditEvent['authMethod'],
    organizationId: row.organizationId,
    target: row.targetType !== null && row.targetId !== null ? { type: row.targetType, id: row.targetId } : null,
    ip: row.ip,
    userAgent: row.userAgent,
    requestId: row.requestId,
    details: fromJson<Record<string, unknown>>(row.details),
  };
}

export function auditEventToRow(event: AuditEvent): Insertable<AuditEventsTable> {
  return {
    id: event.id,
    organizationId: event.organizationId,
    at: event.at,
    action: event.action,
    actorType: event.actor.type,
    actorId: event.actor.id,
    authMethod: event.authMethod,
    targetType: event.target?.type ?? null,
    targetId: event.target?.id ?? null,
    ip: event.ip,
    userAgent: event.userAgent,
    requestId: event.requestId,
    details: toJson(event.details),
  };
}
