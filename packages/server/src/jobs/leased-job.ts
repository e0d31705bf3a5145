// A periodic job that one replica runs at a time: each round first takes (or
// renews) the job's lease row; a replica that dies holding it loses it when it
// runs out, and another takes the job over. The expiry warnings, expired-token
// events, unused-token revocation and the retention purge all run this way.
import { randomBase62 } from '@keyward/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { acquireJobLease, releaseJobLease } from '../storage/job-leases.ts';
import type { Schema } from '../storage/schema.ts';

export const DAY_MS = 86_400_000;

export interface LeasedJobOptions {
  db: Kysely<Schema>;
  read: (value: Date | string) => Date;
  now: () => Date;
  log: Pick<Logger, 'info' | 'warn'>;
  intervalMs?: number;
}

export abstract class LeasedJob {
  readonly id = `job_${randomBase62(12)}`;
  /** The lease row's name: one per job, shared by every replica. */
  protected abstract readonly name: string;
  protected readonly options: Required<LeasedJobOptions>;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<number> | null = null;

  constructor(options: LeasedJobOptions, defaultIntervalMs: number) {
    this.options = { intervalMs: defaultIntervalMs, ...options };
  }

  /** One round's work, run while holding the lease; answers how many things it did. */
  protected abstract work(now: Date): Promise<number>;

  start(): void {
    if (this.timer) return;
    const tick = () => {
      // Stopped (timer cleared) or a round still running: nothing to do.
      if (this.round || !this.timer) return;
      this.round = this.runOnce()
        .catch((error: unknown) => {
          this.options.log.warn({ err: error, job: this.name }, 'a periodic job failed; it runs again at the next interval');
          return 0;
        })
        .finally(() => (this.round = null));
    };
    this.timer = setInterval(tick, this.options.intervalMs);
    this.timer.unref();
    // A first round soon after start, not a whole interval later.
    setTimeout(tick, 1000).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const wasRunning = this.timer !== null;
    this.timer = null;
    await this.round;
    // Another replica may take the job at once rather than when the lease runs out.
    if (wasRunning) await releaseJobLease(this.options.db, this.name, this.id, this.options.now()).catch(() => undefined);
  }

  /** One round, if this replica holds the lease (0 when another does). */
  async runOnce(): Promise<number> {
    const { db, now: clock, intervalMs } = this.options;
    const now = clock();
    if (!(await acquireJobLease(db, this.name, this.id, now, new Date(now.getTime() + 2 * intervalMs)))) return 0;
    return this.work(now);
  }
}
