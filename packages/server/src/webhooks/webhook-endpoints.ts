// Managing an organization's webhook endpoints: each change is one
// transaction with its audit row. The signing secret leaves only once, in the
// answer to the creation; it is sealed at rest and never listed or logged.
import { ConflictError, DEFAULT_PAGE_LIMIT, NotFoundError, ValidationError, auditEvent, decodeCursor, newId, toPage, type Actor, type Page, type ServiceDeps } from '@keyward/core';
import type { Kysely } from 'kysely';
import { KyselyStore } from '../storage/kysely-store.ts';
import type { Schema } from '../storage/schema.ts';
import { enqueueWebhookEvent } from '../storage/webhook-outbox.ts';
import { WebhookStore, type WebhookDelivery, type WebhookEndpoint } from '../storage/webhook-rows.ts';
import { generateWebhookSecret, sealSecret } from './secret-box.ts';
import { urlProblem } from './ssrf-guard.ts';

export interface WebhookServiceDeps {
  deps: ServiceDeps;
  db: Kysely<Schema>;
  read: (value: Date | string) => Date;
  allowPrivate: boolean;
}

export interface WebhookInput {
  url: string;
  events: string[];
  description?: string | null | undefined;
}

export interface WebhookChanges {
  url?: string | undefined;
  events?: string[] | undefined;
  description?: string | null | undefined;
  enabled?: boolean | undefined;
}

function checkUrl(url: string, allowPrivate: boolean): void {
  const problem = urlProblem(url, allowPrivate);
  if (problem) throw ValidationError.field('url', problem);
}

async function inTransaction<T>(s: WebhookServiceDeps, work: (webhooks: WebhookStore, store: KyselyStore) => Promise<T>): Promise<T> {
  return s.db.transaction().execute((trx) => work(new WebhookStore(trx, s.read), new KyselyStore(trx)));
}

async function findOrThrow(webhooks: WebhookStore, actor: Actor, id: string): Promise<WebhookEndpoint> {
  // Another organization's endpoint answers like a missing one, so ids cannot be probed.
  const endpoint = await webhooks.findEndpoint(actor.organizationId, id);
  if (!endpoint) throw new NotFoundError('webhook');
  return endpoint;
}

export async function createWebhook(s: WebhookServiceDeps, actor: Actor, input: WebhookInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  checkUrl(input.url, s.allowPrivate);
  const now = s.deps.now();
  const secret = generateWebhookSecret();
  const endpoint: WebhookEndpoint = {
    id: newId('whk'),
    organizationId: actor.organizationId,
    url: input.url,
    description: input.description ?? null,
    events: [...new Set(input.events)],
    enabled: true,
    createdAt: now,
    updatedAt: now,
  };
  await inTransaction(s, async (webhooks, store) => {
    await webhooks.insertEndpoint(endpoint, sealSecret(s.deps.keyring, endpoint.id, secret));
    await store.insertAuditEvent(
      auditEvent(s.deps, actor, { action: 'webhook.created', organizationId: actor.organizationId, target: { type: 'webhook', id: endpoint.id }, details: { url: endpoint.url, events: endpoint.events } }),
    );
  });
  return { endpoint, secret };
}

export async function getWebhook(s: WebhookServiceDeps, actor: Actor, id: string): Promise<WebhookEndpoint> {
  return findOrThrow(new WebhookStore(s.db, s.read), actor, id);
}

export async function listWebhooks(s: WebhookServiceDeps, actor: Actor, query: { limit?: number | undefined; cursor?: string | undefined }): Promise<Page<WebhookEndpoint>> {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const rows = await new WebhookStore(s.db, s.read).listEndpoints(actor.organizationId, { after: decodeCursor(query.cursor), limit: limit + 1 });
  return toPage(rows, limit, (row) => ({ at: row.createdAt, id: row.id }));
}

export async function updateWebhook(s: WebhookServiceDeps, actor: Actor, id: string, changes: WebhookChanges): Promise<WebhookEndpoint> {
  if (changes.url !== undefined) checkUrl(changes.url, s.allowPrivate);
  return inTransaction(s, async (webhooks, store) => {
    const current = await findOrThrow(webhooks, actor, id);
    const events = changes.events === undefined ? undefined : [...new Set(changes.events)];
    await webhooks.updateEndpoint(actor.organizationId, id, { ...changes, events, updatedAt: s.deps.now() });
    const changed = Object.keys(changes).filter((key) => changes[key as keyof WebhookChanges] !== undefined);
    await store.insertAuditEvent(
      auditEvent(s.deps, actor, {
        action: 'webhook.updated',
        organizationId: actor.organizationId,
        target: { type: 'webhook', id },
        details: { changed, ...(changes.url !== undefined ? { url: { from: current.url, to: changes.url } } : {}), ...(events ? { events } : {}), ...(changes.enabled !== undefined ? { enabled: changes.enabled } : {}) },
      }),
    );
    return findOrThrow(webhooks, actor, id);
  });
}

export async function deleteWebhook(s: WebhookServiceDeps, actor: Actor, id: string): Promise<void> {
  await inTransaction(s, async (webhooks, store) => {
    const endpoint = await findOrThrow(webhooks, actor, id);
    await webhooks.deleteEndpoint(actor.organizationId, id);
    await store.insertAuditEvent(auditEvent(s.deps, actor, { action: 'webhook.deleted', organizationId: actor.organizationId, target: { type: 'webhook', id }, details: { url: endpoint.url } }));
  });
}

/** Enqueues a `ping` for this one endpoint, whatever its event filter. */
export async function sendTestEvent(s: WebhookServiceDeps, actor: Actor, id: string): Promise<{ eventId: string; deliveryId: string }> {
  return inTransaction(s, async (webhooks, store) => {
    const endpoint = await findOrThrow(webhooks, actor, id);
    if (!endpoint.enabled) throw new ConflictError('This webhook is disabled: enable it (PATCH enabled: true) before sending it a test event.');
    const at = s.deps.now();
    const { eventId, deliveryIds } = await enqueueWebhookEvent(webhooks.db, { organizationId: actor.organizationId, type: 'ping', data: { webhookId: id, message: 'A test event from Keyward.' }, at }, [id]);
    await store.insertAuditEvent(auditEvent(s.deps, actor, { action: 'webhook.test_sent', organizationId: actor.organizationId, target: { type: 'webhook', id }, details: { eventId } }));
    return { eventId, deliveryId: deliveryIds[0]! };
  });
}

export async function listDeliveries(
  s: WebhookServiceDeps,
  actor: Actor,
  id: string,
  query: { limit?: number | undefined; cursor?: string | undefined },
): Promise<Page<WebhookDelivery>> {
  const webhooks = new WebhookStore(s.db, s.read);
  await findOrThrow(webhooks, actor, id);
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const rows = await webhooks.listDeliveries(actor.organizationId, id, { after: decodeCursor(query.cursor), limit: limit + 1 });
  return toPage(rows, limit, (row) => ({ at: row.createdAt, id: row.id }));
}
