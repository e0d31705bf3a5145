// The webhook outbox: events are written by the same statement sequence, in
// the same transaction, as the change they report (the audit row is written
// there too, so its insert is the hook). A rolled-back change leaves no event;
// a committed one is delivered even if the process dies right after commit.
import { newId, type AuditEvent } from '@keyward/core';
import type { Kysely } from 'kysely';
import { webhookEventOf, type WebhookEventType } from '../webhooks/webhook-events.ts';
import { fromJson, toJson, type TimestampReader } from './row-values.ts';
import type { Schema } from './schema.ts';

/** What receivers learn about a token: never its secret or digest. */
export async function tokenSummary(db: Kysely<Schema>, organizationId: string, tokenId: string, read: TimestampReader): Promise<Record<string, unknown>> {
  const row = await db
    .selectFrom('tokens')
    .select(['id', 'name', 'hint', 'kind', 'ownerType', 'ownerId', 'scopes', 'permission', 'expiresAt', 'createdAt'])
    .where('organizationId', '=', organizationId)
    .where('id', '=', tokenId)
    .executeTakeFirst();
  if (!row) return { id: tokenId };
  return {
    id: row.id,
    name: row.name,
    hint: row.hint,
    kind: row.kind,
    owner: { type: row.ownerType, id: row.ownerId },
    scopes: fromJson<string[]>(row.scopes),
    permission: row.permission,
    createdAt: read(row.createdAt).toISOString(),
    expiresAt: row.expiresAt === null ? null : read(row.expiresAt).toISOString(),
  };
}

async function memberSummary(db: Kysely<Schema>, userId: string): Promise<Record<string, unknown>> {
  const user = await db.selectFrom('users').select(['id', 'email']).where('id', '=', userId).executeTakeFirst();
  return { userId, email: user?.email ?? null };
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The event's `data`, from the audit row and what the transaction can still read. */
async function eventData(db: Kysely<Schema>, type: WebhookEventType, audit: AuditEvent & { organizationId: string; target: { type: string; id: string } }, read: TimestampReader): Promise<Record<string, unknown>> {
  const actor = audit.actor;
  const { details } = audit;
  switch (type) {
    case 'token.created':
      return { token: await tokenSummary(db, audit.organizationId, audit.target.id, read), actor };
    case 'token.revoked':
      // `unused` when the organization's unused-token policy revoked it; null when someone did.
      return { token: await tokenSummary(db, audit.organizationId, audit.target.id, read), actor, reason: typeof details.reason === 'string' ? details.reason : null };
    case 'token.rotated': {
      const newTokenId = typeof details.newTokenId === 'string' ? details.newTokenId : null;
      return {
        token: await tokenSummary(db, audit.organizationId, audit.target.id, read),
        newToken: newTokenId ? await tokenSummary(db, audit.organizationId, newTokenId, read) : null,
        graceUntil: details.graceUntil ?? null,
        actor,
      };
    }
    case 'token.reuse_detected':
      return { token: await tokenSummary(db, audit.organizationId, audit.target.id, read), revokedTokenIds: stringList(details.revokedTokenIds), actor };
    case 'token.leaked':
      // Who reported it from another organization is not this organization's business; a
      // secret-scanning partner, and where it found the token, are: that is where to look.
      return {
        token: await tokenSummary(db, audit.organizationId, audit.target.id, read),
        report: typeof details.partner === 'string' ? { partner: details.partner, url: details.url ?? null, source: details.source ?? null } : null,
      };
    case 'member.added':
      return { member: { ...(await memberSummary(db, audit.target.id)), role: details.role ?? null }, actor };
    case 'member.removed':
      return { member: await memberSummary(db, audit.target.id), revokedTokenIds: stringList(details.revokedTokenIds), actor };
    default:
      return {};
  }
}

/**
 * Writes the outbox event (and one pending delivery per subscribed, enabled
 * endpoint) for an audit event, inside the caller's transaction. Nothing is
 * written when the action is not in the catalog or nobody subscribed to it.
 */
export async function recordWebhookEvent(db: Kysely<Schema>, audit: AuditEvent, read: TimestampReader): Promise<void> {
  const type = webhookEventOf(audit.action);
  const { organizationId, target } = audit;
  if (!type || organizationId === null || target === null) return;
  await enqueueForSubscribers(db, { organizationId, type, at: audit.at }, () => eventData(db, type, { ...audit, organizationId, target }, read));
}

/** The enabled endpoints of the organization that subscribed to `type`. */
async function subscribedEndpoints(db: Kysely<Schema>, organizationId: string, type: WebhookEventType): Promise<string[]> {
  const endpoints = await db.selectFrom('webhookEndpoints').select(['id', 'events']).where('organizationId', '=', organizationId).where('enabled', '=', 1).execute();
  return endpoints.filter((endpoint) => fromJson<string[]>(endpoint.events).includes(type)).map((endpoint) => endpoint.id);
}

/** Enqueues an event for every subscribed endpoint; `data` is only built when someone listens. */
export async function enqueueForSubscribers(
  db: Kysely<Schema>,
  event: { organizationId: string; type: WebhookEventType; at: Date },
  data: () => Promise<Record<string, unknown>>,
): Promise<boolean> {
  const endpointIds = await subscribedEndpoints(db, event.organizationId, event.type);
  if (endpointIds.length === 0) return false;
  await enqueueWebhookEvent(db, { ...event, data: await data() }, endpointIds);
  return true;
}

/** Inserts an event and its pending deliveries; answers the event id and the delivery ids (in endpoint order). */
export async function enqueueWebhookEvent(
  db: Kysely<Schema>,
  event: { organizationId: string; type: WebhookEventType; data: Record<string, unknown>; at: Date },
  endpointIds: readonly string[],
): Promise<{ eventId: string; deliveryIds: string[] }> {
  const eventId = newId('wev');
  await db.insertInto('webhookEvents').values({ id: eventId, organizationId: event.organizationId, type: event.type, payload: toJson(event.data), createdAt: event.at }).execute();
  const deliveries = endpointIds.map((endpointId) => ({
    id: newId('wdl'),
    eventId,
    endpointId,
    organizationId: event.organizationId,
    status: 'pending',
    attempts: 0,
    nextAttemptAt: event.at,
    createdAt: event.at,
  }));
  if (deliveries.length > 0) await db.insertInto('webhookDeliveries').values(deliveries).execute();
  return { eventId, deliveryIds: deliveries.map((delivery) => delivery.id) };
}
