// Webhook endpoints (SPEC §6): admin, members:manage. The signing secret is
// answered once, by the creation; lists and reads never carry it.
import Type from 'typebox';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { IdParams, NoContent, PageQuery } from '../schemas.ts';
import type { WebhookDelivery, WebhookEndpoint } from '../../storage/webhook-rows.ts';
import { WEBHOOK_EVENT_TYPES } from '../../webhooks/webhook-events.ts';
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, sendTestEvent, updateWebhook, type WebhookServiceDeps } from '../../webhooks/webhook-endpoints.ts';

const TAGS = ['Webhooks'];
const MANAGE = { scopes: ['members:manage'], minRole: 'admin' as const };
const strict = { additionalProperties: false } as const;

const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);
const EventType = Type.Union(WEBHOOK_EVENT_TYPES.map((type) => Type.Literal(type)));
const EventList = Type.Array(EventType, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true, description: 'The event types this endpoint receives.' });
const WebhookUrl = Type.String({
  minLength: 8,
  maxLength: 2048,
  description: 'An http(s) URL on a public address; loopback, private and link-local targets are refused unless KEYWARD_WEBHOOK_ALLOW_PRIVATE=true.',
});
const Description = Nullable(Type.String({ maxLength: 500, pattern: '^[^\\u0000-\\u001f]*$' }));

const CreateWebhookBody = Type.Object({ url: WebhookUrl, events: EventList, description: Type.Optional(Description) }, strict);
const PatchWebhookBody = Type.Object(
  { url: Type.Optional(WebhookUrl), events: Type.Optional(EventList), description: Type.Optional(Description), enabled: Type.Optional(Type.Boolean()) },
  { ...strict, minProperties: 1 },
);

const webhookFields = {
  id: Type.String(),
  url: Type.String(),
  description: Nullable(Type.String()),
  events: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
};
const WebhookResponse = Type.Object(webhookFields);
const CreatedWebhookResponse = Type.Object({
  ...webhookFields,
  secret: Type.String({ description: 'The signing secret (HMAC-SHA256 key of Keyward-Signature). Shown exactly once.' }),
});
const WebhookList = Type.Object({ items: Type.Array(WebhookResponse), nextCursor: Nullable(Type.String()) });
const DeliveryResponse = Type.Object({
  id: Type.String(),
  eventId: Type.String({ description: 'Stable across retries: receivers de-duplicate by it.' }),
  eventType: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')], { description: 'failed: still refused when the 24-hour retry window closed, or held unsent that long by a disabled endpoint (attempts 0).' }),
  attempts: Type.Integer(),
  nextAttemptAt: Nullable(Timestamp),
  lastAttemptAt: Nullable(Timestamp),
  lastStatusCode: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  lastDurationMs: Nullable(Type.Integer()),
  deliveredAt: Nullable(Timestamp),
  createdAt: Timestamp,
});
const DeliveryList = Type.Object({ items: Type.Array(DeliveryResponse), nextCursor: Nullable(Type.String()) });
const TestEventResponse = Type.Object({ eventId: Type.String(), deliveryId: Type.String({ description: 'Follow it in GET /webhooks/{id}/deliveries.' }) });

const iso = (date: Date | null) => (date ? date.toISOString() : null);

function webhookView(endpoint: WebhookEndpoint) {
  return {
    id: endpoint.id,
    url: endpoint.url,
    description: endpoint.description,
    events: endpoint.events,
    enabled: endpoint.enabled,
    createdAt: endpoint.createdAt.toISOString(),
    updatedAt: endpoint.updatedAt.toISOString(),
  };
}

function deliveryView(delivery: WebhookDelivery) {
  return {
    id: delivery.id,
    eventId: delivery.eventId,
    eventType: delivery.eventType,
    status: delivery.status,
    attempts: delivery.attempts,
    nextAttemptAt: delivery.status === 'pending' ? delivery.nextAttemptAt.toISOString() : null,
    lastAttemptAt: iso(delivery.lastAttemptAt),
    lastStatusCode: delivery.lastStatusCode,
    lastError: delivery.lastError,
    lastDurationMs: delivery.lastDurationMs,
    deliveredAt: iso(delivery.deliveredAt),
    createdAt: delivery.createdAt.toISOString(),
  };
}

export async function webhookRoutes(app: App, ctx: AppContext): Promise<void> {
  const s: WebhookServiceDeps = { deps: ctx.deps, db: ctx.database.db, read: ctx.database.capabilities.readTimestamp, allowPrivate: ctx.config.webhooks.allowPrivate };

  app.post('/api/v1/webhooks', {
    config: MANAGE,
    schema: {
      operationId: 'createWebhook',
      tags: TAGS,
      summary: 'Create a webhook endpoint',
      description: 'Answers the endpoint with its signing `secret`, shown this once. Deliveries are signed with it (`Keyward-Signature`).',
      ...secured(),
      body: CreateWebhookBody,
      response: { 201: CreatedWebhookResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const created = await createWebhook(s, actorOf(request), request.body);
      reply.code(201).header('cache-control', 'no-store');
      return { ...webhookView(created.endpoint), secret: created.secret };
    },
  });

  app.get('/api/v1/webhooks', {
    config: MANAGE,
    schema: { operationId: 'listWebhooks', tags: TAGS, summary: 'List webhook endpoints', ...secured(), querystring: PageQuery, response: { 200: WebhookList, ...problemResponses } },
    handler: async (request) => {
      const page = await listWebhooks(s, actorOf(request), request.query);
      return { items: page.items.map(webhookView), nextCursor: page.nextCursor };
    },
  });

  app.get('/api/v1/webhooks/:id', {
    config: MANAGE,
    schema: { operationId: 'getWebhook', tags: TAGS, summary: 'Get a webhook endpoint', ...secured(), params: IdParams, response: { 200: WebhookResponse, ...problemResponses } },
    handler: async (request) => webhookView(await getWebhook(s, actorOf(request), request.params.id)),
  });

  app.patch('/api/v1/webhooks/:id', {
    config: MANAGE,
    schema: {
      operationId: 'updateWebhook',
      tags: TAGS,
      summary: 'Change a webhook endpoint (url, events, description, enabled)',
      description: 'A disabled endpoint receives nothing; deliveries already queued for it wait until it is enabled again.',
      ...secured(),
      params: IdParams,
      body: PatchWebhookBody,
      response: { 200: WebhookResponse, ...problemResponses },
    },
    handler: async (request) => webhookView(await updateWebhook(s, actorOf(request), request.params.id, request.body)),
  });

  app.delete('/api/v1/webhooks/:id', {
    config: MANAGE,
    schema: { operationId: 'deleteWebhook', tags: TAGS, summary: 'Delete a webhook endpoint and its delivery log', ...secured(), params: IdParams, response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await deleteWebhook(s, actorOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });

  app.post('/api/v1/webhooks/:id/test', {
    config: MANAGE,
    schema: {
      operationId: 'sendWebhookTestEvent',
      tags: TAGS,
      summary: 'Send a ping event to a webhook endpoint',
      description: 'Queues a signed `ping` for this endpoint (whatever its event filter) and answers at once; its delivery shows in the delivery log.',
      ...secured(),
      params: IdParams,
      response: { 202: TestEventResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const queued = await sendTestEvent(s, actorOf(request), request.params.id);
      ctx.webhooks.wake();
      reply.code(202);
      return queued;
    },
  });

  app.get('/api/v1/webhooks/:id/deliveries', {
    config: MANAGE,
    schema: {
      operationId: 'listWebhookDeliveries',
      tags: TAGS,
      summary: "A webhook endpoint's delivery log",
      description: 'Newest first: status, attempts, the last status code, error and duration, and when the next attempt is due.',
      ...secured(),
      params: IdParams,
      querystring: PageQuery,
      response: { 200: DeliveryList, ...problemResponses },
    },
    handler: async (request) => {
      const page = await listDeliveries(s, actorOf(request), request.params.id, request.query);
      return { items: page.items.map(deliveryView), nextCursor: page.nextCursor };
    },
  });
}
