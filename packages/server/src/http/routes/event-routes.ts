// GET /api/v1/events: the invalidation events of the caller's organization as
// Server-Sent Events, for SDK verifiers that cannot reach Redis.
//
// One bus subscription per app feeds a numbered buffer (for resume) and every
// open stream; a stream's listener is dropped as soon as its client goes away.
import { RateLimitedError, ServiceUnavailableError, type Actor, type KeywardEvent } from '@keyward/core';
import Type from 'typebox';
import { createEventStreamBuffer, DEFAULT_BUFFER_CAPACITY, type NumberedEvent } from '../../events/event-stream-buffer.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { openSseConnection, type SseConnection } from '../sse-connection.ts';

export interface EventRoutesOptions {
  /** Default 15 s. */
  heartbeatMs?: number;
  /** Concurrent streams per organization in this process; default 100. */
  maxStreamsPerOrganization?: number;
  /** Events kept for resume, all organizations together; default 1,000. */
  bufferCapacity?: number;
  /** Unsent bytes after which a client that does not read is cut; default 1 MiB. */
  maxBufferedBytes?: number;
  /** Where the bus reports missed events (the Redis bus after an outage): every open stream is told to reset. */
  onGap?: ((listener: () => void) => () => void) | undefined;
}

/** What EventSource waits before reconnecting. */
export const RECONNECT_MS = 2000;
const TOO_MANY_STREAMS_RETRY_SECONDS = 30;

const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({ description: 'The id of the last event received: the events after it are replayed, or `reset` is sent when they are no longer known.' }),
  ),
});

const EVENTS_DESCRIPTION = [
  'A `text/event-stream` of cache invalidations for the caller\'s organization. The stream opens with `retry: 2000`,',
  'then (when resuming) the missed events or one `reset`, then `event: ready` whose id marks the current position.',
  'Each change is `event: invalidate` with `data` a JSON event: `tokens.changed` {organizationId, tokenIds},',
  '`member.changed` {organizationId, userId}, `client.changed` {organizationId, clientId} or `organization.changed` {organizationId}.',
  '`event: reset` (data `{"reason":"gap"}`) means: drop everything cached. `: heartbeat` comments keep the connection alive.',
  'A change to the caller\'s own token, member or client ends the stream after its event; reconnect to authenticate again.',
].join(' ');

/** Whether this event changes the credential the stream was opened with, so it must authenticate again. */
function isAboutCaller(actor: Actor, event: KeywardEvent): boolean {
  switch (event.type) {
    case 'tokens.changed':
      return actor.token !== null && event.tokenIds.includes(actor.token.id);
    case 'member.changed':
      return actor.user !== null && event.userId === actor.user.id;
    case 'client.changed':
      return actor.token?.clientId === event.clientId;
    case 'organization.changed':
      return false;
  }
}

export async function eventRoutes(app: App, ctx: AppContext, metrics: Metrics, options: EventRoutesOptions = {}): Promise<void> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxStreamsPerOrganization = options.maxStreamsPerOrganization ?? 100;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const buffer = createEventStreamBuffer({ capacity: options.bufferCapacity ?? DEFAULT_BUFFER_CAPACITY });
  const listeners = new Set<(numbered: NumberedEvent) => void>();
  const connections = new Set<SseConnection>();
  const streamsByOrganization = new Map<string, number>();
  let isClosing = false;

  const unsubscribe = ctx.deps.bus.subscribe((event) => {
    const numbered = buffer.append(event);
    for (const listener of listeners) listener(numbered);
  });
  // Open streams would keep app.close() waiting for ever: end them first.
  app.addHook('preClose', async () => {
    isClosing = true;
    for (const connection of connections) connection.end();
  });
  // The bus may have missed events: SDK verifiers must drop what they cached, as this process did.
  const unsubscribeGaps = options.onGap?.(() => {
    buffer.markGap();
    for (const connection of connections) connection.send({ id: buffer.position(), event: 'reset', data: { reason: 'gap' } });
  });
  app.addHook('onClose', async () => {
    unsubscribe();
    unsubscribeGaps?.();
  });

  app.get('/api/v1/events', {
    config: { scopes: ['keyward:verify'] },
    schema: {
      tags: ['Events'],
      operationId: 'streamEvents',
      summary: 'Stream cache invalidations (Server-Sent Events)',
      description: EVENTS_DESCRIPTION,
      ...secured(),
      headers: EventsHeaders,
      response: { 200: { description: 'The event stream.', content: { 'text/event-stream': { schema: Type.String() } } }, ...problemResponses },
    },
    handler: async (request, reply) => {
      const actor = actorOf(request);
      // A request that authenticated while the app began closing would otherwise open a stream nobody ends.
      if (isClosing) throw new ServiceUnavailableError('The server is shutting down; reconnect.');
      const organizationId = actor.organizationId;
      const open = streamsByOrganization.get(organizationId) ?? 0;
      if (open >= maxStreamsPerOrganization) {
        throw new RateLimitedError(TOO_MANY_STREAMS_RETRY_SECONDS, `This organization already has ${maxStreamsPerOrganization} open event streams here.`);
      }

      reply.hijack();
      // Hijacked replies skip Fastify's sending, so the headers set so far (request id, security) are copied over.
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        // nginx would otherwise buffer the stream and hold back revocations.
        'x-accel-buffering': 'no',
      });
      streamsByOrganization.set(organizationId, open + 1);
      const connection = openSseConnection(reply.raw, {
        heartbeatMs,
        maxBufferedBytes,
        maxStalledHeartbeats: 2,
        onClose() {
          listeners.delete(deliver);
          connections.delete(connection);
          const left = (streamsByOrganization.get(organizationId) ?? 1) - 1;
          if (left > 0) streamsByOrganization.set(organizationId, left);
          else streamsByOrganization.delete(organizationId);
          metrics.setOpenEventStreams(connections.size);
        },
      });
      const deliver = (numbered: NumberedEvent): void => {
        if (numbered.event.organizationId !== organizationId) return;
        connection.send({ id: numbered.id, event: 'invalidate', data: numbered.event });
        if (isAboutCaller(actor, numbered.event)) connection.end();
      };

      // From the replay to the live subscription nothing awaits, so no event can fall between them.
      connection.sendRetry(RECONNECT_MS);
      const lastEventId = request.headers['last-event-id'];
      if (lastEventId !== undefined) {
        const missed = buffer.eventsAfter(lastEventId, organizationId);
        // Replayed changes to the caller's own token came before this request authenticated: no need to end.
        if (missed) for (const numbered of missed) connection.send({ id: numbered.id, event: 'invalidate', data: numbered.event });
        else connection.send({ event: 'reset', data: { reason: 'gap' } });
      }
      // The ready event carries the current position, so a client that saw nothing yet can still resume.
      connection.send({ id: buffer.position(), event: 'ready', data: {} });
      if (!connection.isOpen) return;
      listeners.add(deliver);
      connections.add(connection);
      metrics.setOpenEventStreams(connections.size);
    },
  });
}
