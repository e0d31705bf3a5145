// The webhook delivery worker: every poll it claims the due deliveries (a
// lease in the row, so several replicas share the work without sending one
// delivery twice at the same time), signs and sends each, and records the
// attempt: delivered on a 2xx, otherwise retried with backoff until the
// retry window closes. Delivery is at least once; the event id is stable.
// A disabled endpoint's deliveries wait for it (claimDue skips them) until the
// retry window closes; then they are failed unsent (giveUpHeld).
import { randomBase62, type Keyring } from '@keyward/core';
import type { Logger } from 'pino';
import type { WebhookStore, ClaimedDelivery } from '../storage/webhook-rows.ts';
import { RETRY_WINDOW_MS, retryDelayMs, isWithinRetryWindow } from './retry-schedule.ts';
import { openSecret } from './secret-box.ts';
import { sendWebhook, type AttemptOutcome } from './send-webhook.ts';
import { signatureHeader } from './signature.ts';
import type { WebhookBody, WebhookEventType } from './webhook-events.ts';

export interface WebhookWorkerOptions {
  store: WebhookStore;
  keyring: Keyring;
  now: () => Date;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** KEYWARD_WEBHOOK_ALLOW_PRIVATE: lifts the SSRF guard (tests, trusted internal receivers). */
  allowPrivate: boolean;
  pollIntervalMs?: number;
  /** Deliveries claimed (and sent concurrently) per round. */
  batchSize?: number;
  /** A receiver that has not answered with a status by then has failed the attempt. */
  requestTimeoutMs?: number;
  /** Jitter source for the retry schedule. */
  random?: () => number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_POLL_INTERVAL_MS = 1000;
const DEFAULT_BATCH_SIZE = 10;
const GIVE_UP_INTERVAL_MS = 60_000;

/** The body as delivered: the same bytes on every attempt, so a receiver can de-duplicate by id. */
export function deliveryBody(event: ClaimedDelivery['event']): string {
  const body: WebhookBody = {
    id: event.id,
    type: event.type as WebhookEventType,
    createdAt: event.createdAt.toISOString(),
    organizationId: event.organizationId,
    data: JSON.parse(event.payload) as Record<string, unknown>,
  };
  return JSON.stringify(body);
}

export class WebhookWorker {
  /** This worker's name in the lease column. */
  readonly id = `worker_${randomBase62(12)}`;
  private readonly options: Required<Omit<WebhookWorkerOptions, 'random'>> & Pick<WebhookWorkerOptions, 'random'>;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<number> | null = null;
  private isRunning = false;
  /** When held deliveries were last looked at: once a minute is plenty for a 24-hour window. */
  private lastGiveUpAt = Number.NEGATIVE_INFINITY;

  constructor(options: WebhookWorkerOptions) {
    this.options = {
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
      batchSize: DEFAULT_BATCH_SIZE,
      requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
      ...options,
    };
  }

  /** Starts polling. Idempotent. */
  start(): void {
    if (this.isRunning) return;
    this.isRunning = true;
    this.schedule(0);
  }

  /** Asks for a round now (a test event was just enqueued), rather than at the next poll. */
  wake(): void {
    if (!this.isRunning || this.round) return;
    this.schedule(0);
  }

  /** Stops polling and waits for the round in flight: its requests end within the request timeout. */
  async stop(): Promise<void> {
    this.isRunning = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.round?.catch(() => 0);
  }

  /**
   * One round: claims what is due, sends it, records each attempt. Answers
   * how many deliveries were attempted. Tests call it directly with a moved clock.
   */
  async runOnce(): Promise<number> {
    const { store, now, batchSize, requestTimeoutMs, log } = this.options;
    const started = now();
    if (started.getTime() - this.lastGiveUpAt >= GIVE_UP_INTERVAL_MS) {
      this.lastGiveUpAt = started.getTime();
      const given = await store.giveUpHeld(new Date(started.getTime() - RETRY_WINDOW_MS));
      if (given > 0) log.info({ deliveries: given }, 'webhook deliveries held by a disabled endpoint for the whole retry window were failed unsent');
    }
    // The lease outlives the slowest attempt, so no other worker takes a delivery still in flight.
    const leaseUntil = new Date(started.getTime() + requestTimeoutMs * 3);
    const claimed = await store.claimDue(this.id, started, leaseUntil, batchSize);
    await Promise.all(claimed.map((delivery) => this.attempt(delivery)));
    return claimed.length;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
    // Polling alone must not keep the process alive.
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (!this.isRunning || this.round) return;
    let attempted = 0;
    this.round = this.runOnce();
    try {
      attempted = await this.round;
    } catch (error) {
      // A database away for a moment: the next poll tries again; leases keep claims safe meanwhile.
      this.options.log.warn({ err: error }, 'webhook delivery round failed; retrying at the next poll');
    } finally {
      this.round = null;
    }
    // A full batch suggests more is due: go again at once.
    if (this.isRunning) this.schedule(attempted >= this.options.batchSize ? 0 : this.options.pollIntervalMs);
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const { store, keyring, now, log, allowPrivate, requestTimeoutMs, random } = this.options;
    const at = now();
    let outcome: AttemptOutcome;
    try {
      const secret = openSecret(keyring, delivery.endpoint.id, delivery.endpoint.secretCiphertext);
      const body = deliveryBody(delivery.event);
      const headers = {
        'keyward-event-id': delivery.event.id,
        'keyward-event-type': delivery.event.type,
        'keyward-signature': signatureHeader(secret, body, at),
      };
      outcome = await sendWebhook(delivery.endpoint.url, body, headers, { timeoutMs: requestTimeoutMs, allowPrivate });
    } catch (error) {
      outcome = { statusCode: null, error: (error as Error).message, durationMs: 0 };
    }
    const failedAttempts = delivery.attempts + 1;
    const finished = now();
    const next =
      outcome.error === null
        ? ({ status: 'delivered' } as const)
        : isWithinRetryWindow(delivery.createdAt, finished)
          ? ({ status: 'pending', nextAttemptAt: new Date(finished.getTime() + retryDelayMs(failedAttempts, random)) } as const)
          : ({ status: 'failed' } as const);
    const recorded = await store.recordAttempt(this.id, delivery.id, { at, statusCode: outcome.statusCode, error: outcome.error, durationMs: outcome.durationMs, outcome: next });
    // Ids and codes only: never the URL's query, the body or the signature.
    const facts = { deliveryId: delivery.id, eventId: delivery.event.id, endpointId: delivery.endpoint.id, statusCode: outcome.statusCode, attempts: failedAttempts, durationMs: outcome.durationMs };
    if (!recorded) log.warn(facts, 'webhook delivery finished after its lease ran out; another worker may send it again');
    else if (next.status === 'failed') log.warn({ ...facts, error: outcome.error }, 'webhook delivery failed for good: the retry window closed');
    else if (next.status === 'pending') log.info({ ...facts, error: outcome.error, nextAttemptAt: next.nextAttemptAt.toISOString() }, 'webhook delivery failed; will retry');
  }
}
