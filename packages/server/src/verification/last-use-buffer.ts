// lastUsedAt / lastUsedIp off the request path: a verification only notes the
// use in memory; a timer writes each token's latest use at most once per
// interval, in one transaction, and close() writes what is left.
import { nextEpoch, type EntrySlot } from '@keyward/core';
import type { LastUse } from '../storage/verification-rows.ts';

/** A token's cache entry, whose slot keeps its pending use. */
export interface LastUseHolder {
  lastUseSlot: EntrySlot | null;
}

/** A pending use; `holder` is the entry whose slot points at it, if any. */
interface PendingUse extends LastUse, EntrySlot {
  holder: LastUseHolder | null;
}

export interface LastUseBufferOptions {
  write(uses: readonly LastUse[]): Promise<void>;
  /** How often pending uses are written; each token is written at most once per interval. */
  intervalMs: number;
  onFlush?: (outcome: { count: number; seconds: number; error?: unknown }) => void;
}

export class LastUseBuffer {
  /** Token id → its latest use, kept as numbers until a flush writes them. */
  private pending = new Map<string, PendingUse>();
  /**
   * A use in a holder's slot is updated directly only while its epoch is this
   * one; each flush starts a new epoch (the pending uses leave for the write).
   */
  private epoch = nextEpoch();
  private readonly options: LastUseBufferOptions;
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | null = null;

  constructor(options: LastUseBufferOptions) {
    this.options = options;
    this.timer = setInterval(() => void this.flush(), options.intervalMs);
    this.timer.unref();
  }

  /**
   * O(1), synchronous, no allocation for a token already pending: the latest
   * use of each token wins. A `holder` (the token's cache entry) keeps the
   * pending use in its slot, so the next use of the same entry updates it
   * without looking it up.
   */
  record(tokenId: string, atMs: number, ip: string | null, holder?: LastUseHolder): void {
    if (holder !== undefined) {
      const kept = holder.lastUseSlot as PendingUse | null;
      if (kept !== null && kept.epoch === this.epoch) {
        kept.atMs = atMs;
        kept.ip = ip;
        return;
      }
    }
    let pending = this.pending.get(tokenId);
    if (pending) {
      pending.atMs = atMs;
      pending.ip = ip;
    } else {
      pending = { tokenId, atMs, ip, epoch: this.epoch, holder: null };
      this.pending.set(tokenId, pending);
    }
    if (holder !== undefined) {
      pending.epoch = this.epoch;
      pending.holder = holder;
      holder.lastUseSlot = pending;
    }
  }

  get size(): number {
    return this.pending.size;
  }

  /** Writes everything pending; a failed write keeps the uses (unless newer ones arrived) for the next try. */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.epoch = nextEpoch();
    // Cached tokens neither update these uses again nor keep them alive; a failed write puts them back below.
    for (const use of batch.values()) {
      if (use.holder !== null && use.holder.lastUseSlot === use) use.holder.lastUseSlot = null;
      use.holder = null;
    }
    const started = performance.now();
    this.flushing = this.options
      // The pending entries themselves: a flush of many tokens makes no object per use.
      .write([...batch.values()])
      .then(
        () => this.options.onFlush?.({ count: batch.size, seconds: (performance.now() - started) / 1000 }),
        (error: unknown) => {
          for (const [id, use] of batch) if (!this.pending.has(id)) this.pending.set(id, use);
          this.options.onFlush?.({ count: 0, seconds: (performance.now() - started) / 1000, error });
        },
      )
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
