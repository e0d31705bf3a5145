// The event bus across replicas: every event goes out as JSON on one Redis
// channel, `<prefix>events`, and each replica hands what it hears to its own
// subscribers. The publishing replica delivers to its own subscribers directly,
// so a revocation takes effect here even while Redis is away.
//
// Pub/sub keeps nothing: what is published while a replica is not subscribed is
// lost to it. So a replica that subscribes again after an outage reports a gap
// (its caches may hold what changed meanwhile and must be dropped), and events
// this replica could not publish are published again once Redis is back.
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
  /**
   * Calls `onGap` whenever events may have been missed: this bus subscribed
   * again after losing Redis, or another replica dropped events it could not
   * publish. Whoever caches what events invalidate drops everything. Returns a
   * function that unsubscribes.
   *
   * @example
   * bus.onGap(() => verifier.reset());
   */
  onGap(onGap: (reason: GapReason) => void): () => void;
  /** Events published here that Redis has not taken yet (published again when it is back). */
  readonly unsentCount: number;
}

/**
 * Why events may have been missed: the first subscription (anything cached or
 * streamed before it heard no other replica), a subscription again after an
 * outage, or another replica that dropped events Redis refused.
 */
export type GapReason = 'subscribed' | 'resubscribed' | 'peer_dropped_events';

/** What the bus reports for metrics. */
export interface RedisEventBusObserver {
  /** An event from another replica arrived, `lagSeconds` after it was published (wall clocks of both hosts). */
  delivered(lagSeconds: number): void;
  /** The subscriber connection subscribed again after an outage. */
  resubscribed(): void;
}

export interface RedisEventBusOptions {
  observer?: RedisEventBusObserver | undefined;
  /** Events kept for publishing again while Redis is away; past it the oldest go and a gap is announced. Default 10,000. */
  maxUnsent?: number;
}

type Envelope =
  /** `origin` is the publishing bus, which has already delivered the event to its own subscribers; `sentAtMs` its wall clock. */
  | { origin: string; sentAtMs?: number; event: KeywardEvent }
  /** The publishing bus lost events it could not publish: every listener drops its caches. */
  | { origin: string; sentAtMs?: number; gap: true };

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
    if (!isRecord(value) || typeof value.origin !== 'string') return null;
    const sentAtMs = typeof value.sentAtMs === 'number' && Number.isFinite(value.sentAtMs) ? value.sentAtMs : undefined;
    if (isKeywardEvent(value.event)) return { origin: value.origin, sentAtMs, event: value.event };
    if (value.gap === true) return { origin: value.origin, sentAtMs, gap: true };
  } catch {
    // not JSON
  }
  return null;
}

export function eventChannel(keyPrefix: string): string {
  return `${keyPrefix}events`;
}

/** Subscribes on a dedicated connection; closing the Redis client ends it. */
export function createRedisEventBus(redis: RedisClient, options: RedisEventBusOptions = {}): RedisEventBus {
  const local = createMemoryEventBus();
  const origin = randomUUID();
  const channel = eventChannel(redis.keyPrefix);
  const subscriber = redis.openConnection('subscriber');
  const maxUnsent = Math.max(1, options.maxUnsent ?? 10_000);
  const gapListeners = new Set<(reason: GapReason) => void>();
  const announceGap = (reason: GapReason) => {
    for (const listener of gapListeners) {
      try {
        listener(reason);
      } catch {
        // One failing listener must not keep the others' stale caches alive.
      }
    }
  };

  let markListening: () => void = () => {};
  const listening = new Promise<void>((resolve) => (markListening = resolve));
  let hasSubscribed = false;
  // On every (re)connect: a new connection has no subscriptions.
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(() => {
      markListening();
      // Whatever was published before this subscription (at start-up, or while
      // the connection was down) never arrives; a replica can serve before its
      // first subscription is answered.
      if (hasSubscribed) options.observer?.resubscribed();
      announceGap(hasSubscribed ? 'resubscribed' : 'subscribed');
      hasSubscribed = true;
    }, () => {
      // The connection dropped again; the next 'ready' tries again, and the client logs the outage.
    });
  });
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const envelope = parseEnvelope(message);
    if (!envelope || envelope.origin === origin) return;
    if (envelope.sentAtMs !== undefined) options.observer?.delivered(Math.max(0, Date.now() - envelope.sentAtMs) / 1000);
    if ('gap' in envelope) announceGap('peer_dropped_events');
    else void local.publish(envelope.event);
  });

  // Events Redis refused, oldest first, published again when the command connection is back.
  const unsent: KeywardEvent[] = [];
  let hasDroppedUnsent = false;
  let resending: Promise<void> | null = null;
  const send = (envelope: Envelope) => redis.connection.publish(channel, JSON.stringify(envelope));
  const resend = async () => {
    if (hasDroppedUnsent) {
      await send({ origin, sentAtMs: Date.now(), gap: true });
      hasDroppedUnsent = false;
    }
    while (unsent.length > 0) {
      await send({ origin, sentAtMs: Date.now(), event: unsent[0] as KeywardEvent });
      unsent.shift();
    }
  };
  redis.connection.on('ready', () => {
    if (unsent.length === 0 && !hasDroppedUnsent) return;
    resending ??= resend()
      .catch(() => {
        // Redis went away again: the next 'ready' goes on where this stopped.
      })
      .finally(() => (resending = null));
  });
  const keepUnsent = (event: KeywardEvent) => {
    unsent.push(event);
    if (unsent.length > maxUnsent) {
      unsent.shift();
      hasDroppedUnsent = true;
    }
  };

  return {
    listening,
    get unsentCount() {
      return unsent.length;
    },
    async publish(event) {
      await local.publish(event);
      try {
        await send({ origin, sentAtMs: Date.now(), event });
      } catch (error) {
        keepUnsent(event);
        // Rejects while Redis is away: the other replicas did not hear it yet, and the caller should know.
        throw error;
      }
    },
    subscribe: (onEvent) => local.subscribe(onEvent),
    onGap(onGap) {
      gapListeners.add(onGap);
      return () => gapListeners.delete(onGap);
    },
  };
}
