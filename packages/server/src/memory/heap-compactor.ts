// Gives back the memory a burst of work left behind, once the server is quiet.
//
// Filling the token cache (100,000 tokens after a restart, say) allocates far
// more than it keeps: rows read, answers built, usage counts buffered and
// written. V8's heap grows to that peak, and its ordinary collections free the
// objects but keep most of the pages: with 100,000 cached tokens the process
// stays at ~290 MB resident for ~120 MB of live objects. V8 has a "memory
// reducer" that should hand those pages back when the program goes idle, but in
// a Node server it never starts: it judges idleness by the allocation rate V8
// measured at its last collection, and an idle server runs no collection, so
// the rate it sees stays the fill's (`node --trace-memory-reducer` prints "high
// alloc" every 8 seconds on an idle Keyward).
//
// So Keyward does what the reducer would have done: when resident memory has
// grown well past where it stood after the last compaction (or at start), and
// the event loop has been mostly idle for a whole check interval, it runs V8's
// memory-reducing collection (the one V8 itself runs when the system is low on
// memory). That pauses the process (~240 ms with 100,000 cached tokens on the
// development machine), which is why it waits for a quiet moment and runs at
// most once a minute; a server that is never quiet keeps its peak, as without
// this. KEYWARD_HEAP_COMPACTION=false turns it off.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';

export interface HeapCompactorOptions {
  log: Pick<FastifyBaseLogger, 'info' | 'warn'>;
  /** How often to look (ms). */
  checkIntervalMs?: number;
  /** Least time between two compactions (ms). */
  minIntervalMs?: number;
  /** Growth of resident memory since the last compaction (or start) that makes one worth its pause. */
  minGrowthBytes?: number;
  /** The event loop's busiest share of the last interval at which the process still counts as quiet. */
  maxUtilization?: number;
  /** Seams for tests; the defaults read this process. */
  residentBytes?: () => number;
  /** The event loop's utilization since the previous call (0–1). */
  utilization?: () => number;
  collect?: () => void;
  now?: () => number;
  onCompacted?: (outcome: Compaction) => void;
}

export interface Compaction {
  beforeBytes: number;
  afterBytes: number;
  seconds: number;
}

const MB = 1024 * 1024;

export class HeapCompactor {
  private readonly options: Required<Omit<HeapCompactorOptions, 'onCompacted'>> & Pick<HeapCompactorOptions, 'onCompacted'>;
  private timer: NodeJS.Timeout | null = null;
  /** Resident memory after the last compaction, or when the compactor started. */
  private baselineBytes = 0;
  private lastCompactionMs = -Infinity;
  private compactionCount = 0;

  constructor(options: HeapCompactorOptions) {
    this.options = {
      checkIntervalMs: 10_000,
      minIntervalMs: 60_000,
      minGrowthBytes: 64 * MB,
      maxUtilization: 0.25,
      residentBytes: () => process.memoryUsage.rss(),
      utilization: utilizationSinceLastCall(),
      collect: memoryReducingCollection,
      now: () => performance.now(),
      ...options,
    };
  }

  /** Compactions run so far. */
  get compactions(): number {
    return this.compactionCount;
  }

  start(): void {
    if (this.timer) return;
    this.baselineBytes = this.options.residentBytes();
    this.options.utilization(); // starts the first interval
    this.timer = setInterval(() => this.check(), this.options.checkIntervalMs);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look: compacts when memory grew enough, the process was quiet and the last compaction is old enough. */
  check(): Compaction | null {
    const { options } = this;
    // Read every interval, so the next reading covers only the interval after it.
    const busy = options.utilization();
    const resident = options.residentBytes();
    const now = options.now();
    if (resident - this.baselineBytes < options.minGrowthBytes) {
      // Memory freed by other means (or never grown) lowers the mark growth is measured from.
      this.baselineBytes = Math.min(this.baselineBytes, resident);
      return null;
    }
    if (busy > options.maxUtilization || now - this.lastCompactionMs < options.minIntervalMs) return null;
    const started = performance.now();
    try {
      options.collect();
    } catch (error) {
      // Nothing depends on it: give up for good rather than fail every minute.
      options.log.warn({ err: error }, 'could not compact the heap; heap compaction is off for this process');
      this.stop();
      return null;
    }
    const outcome: Compaction = { beforeBytes: resident, afterBytes: options.residentBytes(), seconds: (performance.now() - started) / 1000 };
    this.lastCompactionMs = options.now();
    this.baselineBytes = outcome.afterBytes;
    this.compactionCount++;
    options.log.info(
      { residentMbBefore: Math.round(outcome.beforeBytes / MB), residentMbAfter: Math.round(outcome.afterBytes / MB), pauseMs: Math.round(outcome.seconds * 1000) },
      'the process was quiet after its memory grew: compacted the heap',
    );
    options.onCompacted?.(outcome);
    return outcome;
  }
}

function utilizationSinceLastCall(): () => number {
  let previous: EventLoopUtilization | undefined;
  return () => {
    const current = performance.eventLoopUtilization();
    const since = previous ? performance.eventLoopUtilization(current, previous) : current;
    previous = current;
    return since.utilization;
  };
}

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
let gcFunction: GcFunction | null = null;

/**
 * V8's "last resort" collection: every space compacted, empty pages released
 * to the system. Node offers it only as the `gc` function of --expose-gc, so
 * the flag is turned on just long enough to create a context that has that
 * function, then off again: no global `gc` appears, and V8's flag hash (which
 * keys Node's compile cache) is the same before and after.
 */
export function memoryReducingCollection(): void {
  if (!gcFunction) {
    const exposed = (globalThis as { gc?: GcFunction }).gc;
    if (exposed) gcFunction = exposed;
    else {
      setFlagsFromString('--expose-gc');
      try {
        gcFunction = runInNewContext('gc') as GcFunction;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
  }
  gcFunction({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
