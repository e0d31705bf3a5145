// The verifier's side of GET /api/v1/events: a Server-Sent Events client over
// fetch streaming (no EventSource dependency), which reconnects with
// exponential backoff and jitter and resumes with Last-Event-ID.
import { createSseParser } from './sse-parser.ts';

/** An invalidation as the server sends it (`event: invalidate`). */
export type InvalidationEvent =
  | { type: 'tokens.changed'; organizationId: string; tokenIds: string[] }
  | { type: 'member.changed'; organizationId: string; userId: string }
  | { type: 'client.changed'; organizationId: string; clientId: string }
  | { type: 'organization.changed'; organizationId: string };

export interface InvalidationStreamOptions {
  /** First wait before reconnecting; default the server's `retry:` (2 s), else 1 s. */
  initialDelayMs?: number;
  /** Longest wait between attempts; default 30 s. */
  maxDelayMs?: number;
  /** Reconnect when nothing (not even a heartbeat) arrived for this long; default 45 s (three server heartbeats). */
  idleTimeoutMs?: number;
}

export interface InvalidationStreamHandlers {
  onInvalidate(event: InvalidationEvent): void;
  /** Everything cached may be stale: a gap the server could not replay, or a first connection. */
  onReset(): void;
  onStateChange?(state: StreamState): void;
}

export type StreamState = 'connecting' | 'open' | 'closed';

export interface InvalidationStream {
  readonly state: StreamState;
  /** Resolves once the stream is live (`ready` received); at once if it is. */
  whenOpen(): Promise<void>;
  close(): void;
}

export interface OpenStreamOptions extends InvalidationStreamOptions {
  url: string;
  token: string;
  fetch: typeof fetch;
}

/** Full jitter over an exponential ceiling: reconnecting verifiers do not stampede a restarted server. */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function openInvalidationStream(options: OpenStreamOptions, handlers: InvalidationStreamHandlers): InvalidationStream {
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
  let initialDelayMs = options.initialDelayMs ?? 1_000;
  let state: StreamState = 'connecting';
  let lastEventId: string | undefined;
  let attempt = 0;
  let current: AbortController | undefined;
  let sleeping: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined;
  let waiters: Array<() => void> = [];

  function setState(next: StreamState): void {
    if (state === next) return;
    state = next;
    if (next === 'open') {
      for (const wake of waiters) wake();
      waiters = [];
    }
    handlers.onStateChange?.(next);
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        sleeping = undefined;
        resolve();
      };
      sleeping = { timer: setTimeout(wake, ms), wake };
      sleeping.timer.unref?.();
    });
  }

  async function connectOnce(): Promise<void> {
    const controller = new AbortController();
    current = controller;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = (): void => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new Error('event stream idle')), idleTimeoutMs);
      idle.unref?.();
    };
    try {
      touch();
      const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'text/event-stream' };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const response = await options.fetch(options.url, { headers, signal: controller.signal });
      if (!response.ok || !response.body) {
        await response.body?.cancel().catch(() => {});
        return;
      }
      const isResuming = lastEventId !== undefined;
      const parser = createSseParser({
        onRetry(ms) {
          if (options.initialDelayMs === undefined) initialDelayMs = ms;
        },
        onMessage(message) {
          if (message.id !== undefined) lastEventId = message.id;
          if (message.event === 'invalidate') {
            try {
              handlers.onInvalidate(JSON.parse(message.data) as InvalidationEvent);
            } catch {
              // An event we cannot read could be a revocation: drop everything rather than guess.
              handlers.onReset();
            }
          } else if (message.event === 'reset') {
            handlers.onReset();
          } else if (message.event === 'ready') {
            // Without a resume, changes made while no stream was open are unknown.
            if (!isResuming) handlers.onReset();
            attempt = 0;
            setState('open');
          }
        },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        touch();
        parser.push(value);
      }
    } catch {
      // Network errors, aborts and idle timeouts all mean: reconnect.
    } finally {
      if (idle) clearTimeout(idle);
      current = undefined;
    }
  }

  async function run(): Promise<void> {
    while (state !== 'closed') {
      await connectOnce();
      // close() may have run while connectOnce() awaited.
      if ((state as StreamState) === 'closed') break;
      setState('connecting');
      await sleep(backoffDelayMs(attempt++, initialDelayMs, maxDelayMs));
    }
  }
  void run();

  return {
    get state() {
      return state;
    },
    whenOpen() {
      if (state === 'open') return Promise.resolve();
      if (state === 'closed') return Promise.reject(new Error('the invalidation stream is closed'));
      return new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      if (state === 'closed') return;
      setState('closed');
      current?.abort();
      if (sleeping) {
        clearTimeout(sleeping.timer);
        sleeping.wake();
      }
    },
  };
}
