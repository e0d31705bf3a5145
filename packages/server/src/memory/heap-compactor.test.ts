import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../metrics/metrics.ts';
import { HeapCompactor, memoryReducingCollection, type HeapCompactorOptions } from './heap-compactor.ts';

const MB = 1024 * 1024;

/** A compactor over a process the test describes: resident memory, event-loop load and a clock it moves. */
function harness(overrides: Partial<HeapCompactorOptions> = {}) {
  const state = { resident: 150 * MB, busy: 0, now: 0, collections: 0, afterCollection: 180 * MB };
  const logged: string[] = [];
  const compactor = new HeapCompactor({
    log: { info: (_facts: unknown, message: string) => logged.push(message), warn: (_facts: unknown, message: string) => logged.push(message) } as never,
    residentBytes: () => state.resident,
    utilization: () => state.busy,
    now: () => state.now,
    collect: () => {
      state.collections++;
      state.resident = state.afterCollection;
    },
    ...overrides,
  });
  compactor.start();
  compactor.stop(); // the test drives check() itself
  return { compactor, state, logged };
}

describe('HeapCompactor', () => {
  it('compacts once the process is quiet after its resident memory grew', () => {
    const { compactor, state, logged } = harness();
    state.resident = 290 * MB;
    const outcome = compactor.check();
    expect(outcome).toMatchObject({ beforeBytes: 290 * MB, afterBytes: 180 * MB });
    expect(state.collections).toBe(1);
    expect(compactor.compactions).toBe(1);
    expect(logged).toEqual(['the process was quiet after its memory grew: compacted the heap']);
  });

  it('leaves a busy process alone, however much its memory grew', () => {
    const { compactor, state } = harness();
    state.resident = 290 * MB;
    state.busy = 0.9;
    expect(compactor.check()).toBeNull();
    expect(state.collections).toBe(0);
    // Quiet again: now it compacts.
    state.busy = 0.05;
    expect(compactor.check()).not.toBeNull();
  });

  it('does not pause a process whose memory grew less than the threshold', () => {
    const { compactor, state } = harness();
    state.resident = 150 * MB + 63 * MB;
    expect(compactor.check()).toBeNull();
    expect(state.collections).toBe(0);
  });

  it('measures growth from the memory the last compaction left, and waits a minute between two', () => {
    const { compactor, state } = harness();
    state.resident = 290 * MB;
    compactor.check();
    // 180 MB after the first; 250 MB is 70 MB above it, but only 30 s later.
    state.now = 30_000;
    state.resident = 250 * MB;
    expect(compactor.check()).toBeNull();
    state.now = 61_000;
    expect(compactor.check()).not.toBeNull();
    expect(state.collections).toBe(2);
    // 200 MB is not 64 MB above the 180 MB left last time.
    state.now = 200_000;
    state.resident = 200 * MB;
    expect(compactor.check()).toBeNull();
  });

  it('lowers its mark when memory went down by itself, so later growth counts from there', () => {
    const { compactor, state } = harness();
    state.resident = 100 * MB;
    expect(compactor.check()).toBeNull();
    state.resident = 170 * MB;
    expect(compactor.check()).not.toBeNull();
  });

  it('turns itself off, with a warning, when the collection cannot run', () => {
    const { compactor, state, logged } = harness({
      collect: () => {
        throw new Error('no gc here');
      },
    });
    state.resident = 290 * MB;
    expect(compactor.check()).toBeNull();
    expect(logged).toEqual(['could not compact the heap; heap compaction is off for this process']);
  });

  it('is counted on /metrics with its pause', async () => {
    const metrics = createMetrics();
    const { compactor, state } = harness({ onCompacted: (outcome) => metrics.heapCompacted(outcome.seconds) });
    state.resident = 290 * MB;
    compactor.check();
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/keyward_heap_compaction_seconds_count\{[^}]*\} 1/);
  });

  it('runs V8 memory-reducing collection without exposing a global gc', () => {
    // Fragment the heap: keep one object in ten of many.
    const all = Array.from({ length: 300_000 }, (_, index) => ({ index, text: `value ${index}` }));
    const kept = all.filter((_, index) => index % 10 === 0);
    all.length = 0;
    const before = getHeapStatistics().total_heap_size;
    memoryReducingCollection();
    const after = getHeapStatistics().total_heap_size;
    expect(after).toBeLessThan(before);
    expect(kept).toHaveLength(30_000);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
