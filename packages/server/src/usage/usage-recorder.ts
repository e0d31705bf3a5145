// Usage counters without a database write per verification (SPEC §4): each
// verification adds one to an in-memory counter for its organization, minute,
// token, client and code; a timer writes all counters in one batched upsert.
// Counts therefore reach GET /api/v1/usage after the next flush, at most one
// flush interval late.
import { nextEpoch, type EntrySlot, type VerifyCode } from '@keyward/core';
import type { UsageIncrement } from '../storage/usage-rows.ts';

export interface UsageSample {
  organizationId: string;
  /** null when the verification named no known token. */
  tokenId: string | null;
  /** The token's API client; null for personal tokens and unknown ones. */
  clientId: string | null;
  code: VerifyCode;
}

/** Where counters go: UsageStore, or a fake in tests. All of a call's counts are written, or none. */
export interface UsageSink {
  addUsage(increments: readonly UsageIncrement[]): Promise<void>;
}

/** An object that stands for one sample each time it is passed (a cached token for its VALID answers), with a slot for its counter. */
export interface CounterHolder {
  usageSlot: EntrySlot | null;
}

/** The two pino methods the recorder uses. */
export interface UsageLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface UsageRecorderOptions {
  store: UsageSink;
  now: () => Date;
  flushIntervalMs?: number;
  /**
   * The most counters (distinct organization, minute, token, client, code)
   * held while the database is unreachable; past it the oldest are dropped,
   * counted and logged. One flush's counters may be in flight besides.
   */
  maxPending?: number;
  /**
   * As many counters pending start a write at once instead of waiting for the
   * timer: busy servers with many distinct tokens write in batches of about
   * this size, and only an unreachable database lets the buffer grow towards
   * `maxPending`.
   */
  flushAtPending?: number;
  log: UsageLog;
  /** Told after each write: how many counters, how long, and the error if it failed (metrics). */
  onFlush?: ((outcome: { count: number; seconds: number; error?: unknown }) => void) | undefined;
}

/**
 * @example
 * const usage = createUsageRecorder({ store: new UsageStore(database.db), now: () => new Date(), log });
 * usage.record({ organizationId, tokenId: token.id, clientId: token.clientId, code: 'VALID' }); // no I/O
 * await usage.close(); // stops the timer and writes what is left
 */
export interface UsageRecorder {
  /**
   * Counts one verification; synchronous and constant-time, never throws for
   * storage reasons. `atMs` is when it happened, if the caller already read the clock.
   */
  /**
   * `same`, when given, is an object that stands for this exact sample each
   * time it is passed (a cached token for its VALID answers): the recorder
   * then finds the counter by that object's identity instead of building and
   * hashing a key on every call, and keeps it in the object's slot for
   * {@link countAgain}. Never pass one object for different samples.
   */
  record(sample: UsageSample, atMs?: number, same?: CounterHolder): void;
  /**
   * Counts one more of the sample `same` stood for when it was last recorded,
   * if that counter is still pending and of `atMs`'s minute, and says whether
   * it did: no key, no map, no sample object. Otherwise the caller records.
   */
  countAgain(same: CounterHolder, atMs: number): boolean;
  /**
   * Writes every counter recorded so far in one batched upsert. Rejects when
   * the write fails; the counts then stay for the next flush. Never runs two
   * writes at once: a call during a flush waits for it and then writes.
   */
  flush(): Promise<void>;
  /** Stops the timer and flushes; a failure is logged, not thrown, since shutdown must go on. */
  close(): Promise<void>;
  /** Verifications recorded and not yet written, including those of a flush in progress. */
  pendingCount(): number;
  /** Verifications dropped because the buffer was full, since start. */
  droppedCount(): number;
}

const MINUTE_MS = 60_000;
export const DEFAULT_USAGE_FLUSH_INTERVAL_MS = 5_000;
/** About 25 MB of counters: minutes of a busy server's distinct tokens while the database is down. */
export const DEFAULT_USAGE_MAX_PENDING = 100_000;
/**
 * Half of that: far above what most servers count between two timer flushes
 * (a write of N counters costs N row upserts, so writing early and often
 * would cost more than it saves), and early enough that a burst of distinct
 * tokens is written rather than dropped.
 */
export const DEFAULT_USAGE_FLUSH_AT_PENDING = 50_000;

/**
 * Pending counters in insertion order (the first is the oldest). A sample
 * passed with a `same` object is counted under that object, with no key
 * string built or kept, as long as its minute is the current one; every other
 * sample under its key string. When the minute turns, object keys become
 * their key strings, so a key never stands for two minutes.
 */
type CounterKey = string | object;
/** A pending counter; `holder` is the object whose slot points at it, if any. */
interface Counter extends UsageIncrement, EntrySlot {
  holder: CounterHolder | null;
}
type Counters = Map<CounterKey, Counter>;

/** A counter's key string: what it counts (organization, token, client, code) in which minute. */
function keyOf(counted: UsageSample, bucketMs: number): string {
  return `${counted.organizationId}|${bucketMs}|${counted.tokenId ?? ''}|${counted.clientId ?? ''}|${counted.code}`;
}

/** The same counters, each under its key string, merged where two now share one; order kept. */
function byKeyString(counters: Counters): Counters {
  const keyed: Counters = new Map();
  for (const [key, counter] of counters) {
    release(counter);
    const text = typeof key === 'string' ? key : keyOf(counter, counter.bucketStart.getTime());
    const kept = keyed.get(text);
    if (kept) kept.count += counter.count;
    else keyed.set(text, counter);
  }
  return keyed;
}

/** Empties the slot of a counter's holder, so a cached token neither counts into it again nor keeps it alive. */
function release(counter: Counter): void {
  if (counter.holder !== null && counter.holder.usageSlot === counter) counter.holder.usageSlot = null;
  counter.holder = null;
}

/** A copy of a counter's count and what it counts, for a counter that goes on counting. */
function incrementOf(counter: Counter): UsageIncrement {
  return { bucketStart: counter.bucketStart, organizationId: counter.organizationId, tokenId: counter.tokenId, clientId: counter.clientId, code: counter.code, count: counter.count };
}

export function createUsageRecorder(options: UsageRecorderOptions): UsageRecorder {
  const { store, now, log } = options;
  const maxPending = Math.max(1, options.maxPending ?? DEFAULT_USAGE_MAX_PENDING);
  const flushAtPending = Math.max(1, options.flushAtPending ?? DEFAULT_USAGE_FLUSH_AT_PENDING);
  let pending: Counters = new Map();
  let pendingSamples = 0;
  let inFlightSamples = 0;
  let dropped = 0;
  let droppedUnlogged = 0;
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  let closing: Promise<void> | null = null;
  let lastWriteFailed = false;
  /** The minute that object keys in `pending` stand for. */
  let currentBucketMs = -1;
  /**
   * A counter in a holder's slot is counted into only while its epoch is this
   * one: a new epoch starts whenever a counter may have left `pending` without
   * its slot being emptied (a drop) or the minute turned. A write empties the
   * slots of the counters it lets go.
   */
  let epoch = nextEpoch();

  function dropOldest(counters: Counters): number {
    const oldest = counters.entries().next();
    if (oldest.done) return 0;
    const [key, counter] = oldest.value;
    counters.delete(key);
    release(counter);
    epoch = nextEpoch();
    dropped += counter.count;
    droppedUnlogged += counter.count;
    return counter.count;
  }

  // Every counter of a minute shares that minute's Date (96 bytes each otherwise); nothing writes to it.
  let bucketStart = new Date(0);
  function bucketStartOf(bucketMs: number): Date {
    if (bucketStart.getTime() !== bucketMs) bucketStart = new Date(bucketMs);
    return bucketStart;
  }

  function countAgain(same: CounterHolder, atMs: number): boolean {
    const counter = same.usageSlot as Counter | null;
    if (counter === null || counter.epoch !== epoch || Math.floor(atMs / MINUTE_MS) * MINUTE_MS !== currentBucketMs) return false;
    counter.count += 1;
    pendingSamples += 1;
    return true;
  }

  function record(sample: UsageSample, atMs: number = now().getTime(), same?: CounterHolder): void {
    const bucketMs = Math.floor(atMs / MINUTE_MS) * MINUTE_MS;
    if (bucketMs > currentBucketMs) {
      // Once a minute: the last minute's object keys would otherwise stand for this one.
      pending = byKeyString(pending);
      currentBucketMs = bucketMs;
      epoch = nextEpoch();
    }
    // A sample of an earlier minute (its clock was read before a slow lookup) is counted under its key string.
    const holder = same !== undefined && bucketMs === currentBucketMs ? same : null;
    const key: CounterKey = holder ?? keyOf(sample, bucketMs);
    let counter = pending.get(key);
    pendingSamples += 1;
    const added = counter === undefined;
    if (counter) {
      counter.count += 1;
    } else {
      if (pending.size >= maxPending) pendingSamples -= dropOldest(pending);
      counter = { bucketStart: bucketStartOf(bucketMs), organizationId: sample.organizationId, tokenId: sample.tokenId, clientId: sample.clientId, code: sample.code, count: 1, epoch, holder };
      pending.set(key, counter);
    }
    if (holder !== null) {
      // Counted into directly next time (countAgain), while it stays pending.
      counter.epoch = epoch;
      counter.holder = holder;
      holder.usageSlot = counter;
    }
    // Volume does not wait for the timer; while a write is under way (or failing) the buffer holds the rest.
    // Last, so this sample is wholly in the batch the write takes.
    // After a failed write, only the timer tries again: a database that is down is not asked on every verification.
    if (added && pending.size >= flushAtPending && running === null && closing === null && !lastWriteFailed) flushInBackground();
  }

  function flushInBackground(): void {
    flush().catch((error: unknown) => log.warn({ err: error, pendingSamples: pendingCount() }, 'usage flush failed; the counts are kept for the next one'));
  }

  function logDropped(): void {
    if (droppedUnlogged === 0) return;
    log.warn({ droppedSamples: droppedUnlogged, droppedTotal: dropped }, 'usage buffer full: the oldest usage counts were dropped');
    droppedUnlogged = 0;
  }

  async function write(): Promise<void> {
    // The batch takes every count. A cached token's counter that counted more
    // than once since the last write (the token is in use) stays pending at
    // zero, in its slot: the token's next verifications count into it with no
    // new counter and no map lookup. Every other counter leaves, so an idle
    // token keeps nothing between writes.
    const batch: UsageIncrement[] = [];
    for (const [key, counter] of pending) {
      if (typeof key !== 'string' && counter.count > 1) {
        // The batch takes a copy: the counter goes on counting from zero.
        batch.push(incrementOf(counter));
        counter.count = 0;
      } else {
        pending.delete(key);
        release(counter);
        // A counter that leaves is written as it is, not copied.
        if (counter.count > 0) batch.push(counter);
      }
    }
    if (batch.length === 0) return logDropped();
    inFlightSamples = pendingSamples;
    pendingSamples = 0;
    const started = performance.now();
    try {
      await store.addUsage(batch);
      lastWriteFailed = false;
      options.onFlush?.({ count: batch.length, seconds: (performance.now() - started) / 1000 });
    } catch (error) {
      lastWriteFailed = true;
      options.onFlush?.({ count: 0, seconds: (performance.now() - started) / 1000, error });
      // The write is one transaction, so none of the batch was stored: put it
      // back ahead of what arrived meanwhile, under key strings (its minute may
      // have passed), and keep within the bound. Counters kept in slots stay
      // as they are: they hold only what arrived meanwhile, of the current minute.
      const restored: Counters = new Map();
      for (const increment of batch) {
        const key = keyOf(increment, increment.bucketStart.getTime());
        const kept = restored.get(key);
        if (kept) kept.count += increment.count;
        else restored.set(key, { ...increment, epoch, holder: null });
      }
      for (const [key, counter] of pending) {
        const kept = typeof key === 'string' ? restored.get(key) : undefined;
        if (kept) kept.count += counter.count;
        else restored.set(key, counter);
      }
      pendingSamples += inFlightSamples;
      while (restored.size > maxPending) pendingSamples -= dropOldest(restored);
      pending = restored;
      throw error;
    } finally {
      inFlightSamples = 0;
      logDropped();
    }
  }

  function start(): Promise<void> {
    running = write().finally(() => {
      running = null;
    });
    return running;
  }

  function flush(): Promise<void> {
    if (queued) return queued;
    if (!running) return start();
    // One write at a time; every caller waiting meanwhile shares the next one.
    queued = running
      .catch(() => {})
      .then(() => {
        queued = null;
        return start();
      });
    return queued;
  }

  const timer = setInterval(flushInBackground, options.flushIntervalMs ?? DEFAULT_USAGE_FLUSH_INTERVAL_MS);
  // Counting must not keep the process alive.
  timer.unref();

  function pendingCount(): number {
    return pendingSamples + inFlightSamples;
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      clearInterval(timer);
      try {
        await flush();
      } catch (error) {
        log.error({ err: error, lostSamples: pendingCount() }, 'usage counts could not be written at shutdown');
      }
    })();
    return closing;
  }

  return { record, countAgain, flush, close, pendingCount, droppedCount: () => dropped };
}
