// The event bus across replicas: every event goes out as JSON on one Redis
// channel, `<prefix>events`, and each replica hands what it hears to its own
// subscribers. The publishing replica delivers to its own subscribers directly,
// so a revocation takes effect here even while Redis is away.
import { randomUUID } from 'node:crypto';
import type { EventBus, KeywardEvent } from '@keyward/core';
import type { RedisClient } from '../redis/redis-client.ts';
import { createMemoryEventBus } from './memory-event-bus.ts';

export interface RedisEventBus extends EventBus {
  /**
   * Resolves once this bus hears other replicas (its SUBSCRIBE was answered).
   * Never rejects: with Redis away the bus keeps serving this process.
   */
  readonly listening: Promise<void>;
}

interface Envelope {
  /** The publishing bus, which has already delivered the event to its own subscribers. */
  origin: string;
  event: KeywardEvent;
}

// A Record over every event type, so a new event in core does not compile
// until the bus knows how to check it (otherwise replicas would drop it).
const HAS_EVENT_FIELDS: Record<KeywardEvent['type'], (event: Record<string, unknown>) => boolean> = {
  'tokens.changed': (event) => Array.isArray(event.tokenIds) && event.tokenIds.every((id) => typeof id === 'string'),
  'member.changed': (event) => typeof event.userId === 'string',
  'client.changed': (event) => typeof event.clientId === 'string',
  'organization.changed': () => true,
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isKeywardEvent(value: unknown): value is KeywardEvent {
  if (!isRecord(value) || typeof value.organizationId !== 'string' || typeof value.type !== 'string') return false;
  const hasFields = Object.hasOwn(HAS_EVENT_FIELDS, value.type) ? HAS_EVENT_FIELDS[value.type as KeywardEvent['type']] : undefined;
  return hasFields !== undefined && hasFields(value);
}

/** Anything else on the channel (another program, a different version, garbage) is not an event. */
function parseEnvelope(message: string): Envelope | null {
  try {
    const value: unknown = JSON.parse(message);
    if (isRecord(value) && typeof value.origin === 'string' && isKeywardEvent(value.event)) return { origin: value.origin, event: value.event };
  } catch {
    // not JSON
  }
  return null;
}

export function eventChannel(keyPrefix: string): string {
  return `${keyPrefix}events`;
}

/** Subscribes on a dedicated connection; closing the Redis client ends it. */
export function createRedisEventBus(redis: RedisClient): RedisEventBus {
  const local = createMemoryEventBus();
  const origin = randomUUID();
  const channel = eventChannel(redis.keyPrefix);
  const subscriber = redis.openConnection('subscriber');

  let markListening: () => void = () => {};
  const listening = new Promise<void>((resolve) => (markListening = resolve));
  // On every (re)connect: a new connection has no subscriptions.
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(markListening, () => {
      // The connection dropped again; the next 'ready' tries again, and the client logs the outage.
    });
  });
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const envelope = parseEnvelope(message);
    if (envelope && envelope.origin !== origin) void local.publish(envelope.event);
  });

  return {
    listening,
    async publish(event) {
      await local.publish(event);
      // Rejects while Redis is away: the other replicas did not hear it, and the caller should know.
      await redis.connection.publish(channel, JSON.stringify({ origin, event } satisfies Envelope));
    },
    subscribe: (onEvent) => local.subscribe(onEvent),
  };
}
