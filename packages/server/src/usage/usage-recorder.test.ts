import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { VerifyCode } from '@keyward/core';
import type { Database } from '../storage/database.ts';
import { describeEachDialect } from '../storage/test-databases.ts';
import { UsageStore, type UsageIncrement } from '../storage/usage-rows.ts';
import { StatementCounter } from '../testing/statement-counter.ts';
import { createUsageRecorder, type CounterHolder, type UsageLog, type UsageRecorder, type UsageSample } from './usage-recorder.ts';

const ORG = 'org_a';
const MINUTE_MS = 60_000;

interface TestClock {
  now: () => Date;
  advance(ms: number): void;
}

function createClock(start = new Date('2026-01-05T10:00:00.000Z')): TestClock {
  let current = start.getTime();
  return { now: () => new Date(current), advance: (ms) => void (current += ms) };
}

function sample(code: VerifyCode = 'VALID', tokenId: string | null = 'tok_a', clientId: string | null = null, organizationId = ORG): UsageSample {
  return { organizationId, tokenId, clientId, code };
}

/** A cached token's stand-in: an object with the slot the recorder keeps its counter in. */
function holder(): CounterHolder {
  return { usageSlot: null };
}

/** A sink that keeps copies of what it was given, and fails while told to. */
class FakeSink {
  written: UsageIncrement[][] = [];
  failuresLeft = 0;
  calls = 0;
  /** Resolves the write in progress, when `hold` is set. */
  hold = false;
  private release: (() => void) | null = null;
  active = 0;
  maxActive = 0;

  async addUsage(increments: readonly UsageIncrement[]): Promise<void> {
    this.calls += 1;
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.hold) await new Promise<void>((resolve) => (this.release = resolve));
      if (this.failuresLeft > 0) {
        this.failuresLeft -= 1;
        throw new Error('database unreachable');
      }
      // The increments' own fields only (the recorder may pass its counters, with their bookkeeping).
      this.written.push(increments.map(({ bucketStart, organizationId, tokenId, clientId, code, count }) => ({ bucketStart, organizationId, tokenId, clientId, code, count })));
    } finally {
      this.active -= 1;
    }
  }

  finishWrite(): void {
    this.hold = false;
    this.release?.();
    this.release = null;
  }

  /** Every written count summed per minute|token|code. */
  totals(): Record<string, number> {
    const totals: Record<string, number> = {};
    for (const batch of this.written) {
      for (const row of batch) {
        const key = `${row.bucketStart.toISOString()}|${row.tokenId ?? ''}|${row.code}`;
        totals[key] = (totals[key] ?? 0) + row.count;
      }
    }
    return totals;
  }
}

function fakeLog(): UsageLog & { lines: Array<{ level: string; details: object; message: string }> } {
  const lines: Array<{ level: string; details: object; message: string }> = [];
  return {
    lines,
    warn: (details, message) => void lines.push({ level: 'warn', details, message }),
    error: (details, message) => void lines.push({ level: 'error', details, message }),
  };
}

describe('createUsageRecorder', () => {
  let clock: TestClock;
  let sink: FakeSink;
  let log: ReturnType<typeof fakeLog>;
  let recorder: UsageRecorder;
  const T0 = '2026-01-05T10:00:00.000Z';
  const T1 = '2026-01-05T10:01:00.000Z';

  beforeEach(() => {
    clock = createClock(new Date('2026-01-05T10:00:30.000Z'));
    sink = new FakeSink();
    log = fakeLog();
    recorder = createUsageRecorder({ store: sink, now: clock.now, log });
  });
  afterEach(async () => {
    await recorder.close();
  });

  it('sums samples per minute, token and code, and writes them in one call', async () => {
    for (let i = 0; i < 3; i += 1) recorder.record(sample('VALID'));
    recorder.record(sample('REVOKED'));
    clock.advance(MINUTE_MS);
    recorder.record(sample('VALID'));
    recorder.record(sample('VALID', null));
    expect(recorder.pendingCount()).toBe(6);

    await recorder.flush();

    expect(sink.calls).toBe(1);
    expect(sink.totals()).toEqual({ [`${T0}|tok_a|VALID`]: 3, [`${T0}|tok_a|REVOKED`]: 1, [`${T1}|tok_a|VALID`]: 1, [`${T1}||VALID`]: 1 });
    expect(recorder.pendingCount()).toBe(0);
  });

  it('keeps the organization and client of each counter', async () => {
    recorder.record(sample('VALID', 'tok_s', 'cli_x'));
    recorder.record(sample('VALID', 'tok_b', null, 'org_b'));
    await recorder.flush();
    expect(sink.written[0]).toEqual(
      expect.arrayContaining([
        { bucketStart: new Date(T0), organizationId: ORG, tokenId: 'tok_s', clientId: 'cli_x', code: 'VALID', count: 1 },
        { bucketStart: new Date(T0), organizationId: 'org_b', tokenId: 'tok_b', clientId: null, code: 'VALID', count: 1 },
      ]),
    );
  });

  it('does not call the store when nothing was recorded', async () => {
    await recorder.flush();
    expect(sink.calls).toBe(0);
  });

  it('keeps the counts of a failed flush and writes them exactly once with the next', async () => {
    recorder.record(sample('VALID'));
    recorder.record(sample('VALID'));
    sink.failuresLeft = 1;
    await expect(recorder.flush()).rejects.toThrow('database unreachable');
    expect(recorder.pendingCount()).toBe(2);

    recorder.record(sample('VALID'));
    recorder.record(sample('EXPIRED'));
    await recorder.flush();
    await recorder.flush();

    expect(sink.written).toHaveLength(1);
    expect(sink.totals()).toEqual({ [`${T0}|tok_a|VALID`]: 3, [`${T0}|tok_a|EXPIRED`]: 1 });
    expect(recorder.pendingCount()).toBe(0);
  });

  it('merges samples recorded during a failing write with the kept counts', async () => {
    recorder.record(sample('VALID'));
    sink.hold = true;
    sink.failuresLeft = 1;
    const failing = recorder.flush();
    recorder.record(sample('VALID'));
    expect(recorder.pendingCount()).toBe(2);
    sink.finishWrite();
    await expect(failing).rejects.toThrow();

    await recorder.flush();
    expect(sink.totals()).toEqual({ [`${T0}|tok_a|VALID`]: 2 });
  });

  it('never runs two writes at once, and a flush during a write writes what came after', async () => {
    recorder.record(sample('VALID'));
    sink.hold = true;
    const first = recorder.flush();
    recorder.record(sample('DISABLED'));
    const second = recorder.flush();
    const third = recorder.flush();
    await Promise.resolve();
    expect(sink.active).toBe(1);
    sink.finishWrite();
    await Promise.all([first, second, third]);

    expect(sink.maxActive).toBe(1);
    expect(sink.calls).toBe(2);
    expect(sink.written.map((batch) => batch.map((row) => row.code))).toEqual([['VALID'], ['DISABLED']]);
  });

  it('drops the oldest counters past maxPending, counts what it dropped and logs it', async () => {
    const bounded = createUsageRecorder({ store: sink, now: clock.now, log, maxPending: 2 });
    try {
      bounded.record(sample('VALID', 'tok_1'));
      bounded.record(sample('VALID', 'tok_1'));
      bounded.record(sample('VALID', 'tok_2'));
      bounded.record(sample('VALID', 'tok_3'));
      // An existing counter still counts when the buffer is full.
      bounded.record(sample('VALID', 'tok_3'));
      expect(bounded.droppedCount()).toBe(2);
      expect(bounded.pendingCount()).toBe(3);

      await bounded.flush();
      expect(sink.totals()).toEqual({ [`${T0}|tok_2|VALID`]: 1, [`${T0}|tok_3|VALID`]: 2 });
      expect(log.lines).toContainEqual({ level: 'warn', details: { droppedSamples: 2, droppedTotal: 2 }, message: expect.stringMatching(/dropped/) });
    } finally {
      await bounded.close();
    }
  });

  it('stays within maxPending when a failed batch is put back', async () => {
    const bounded = createUsageRecorder({ store: sink, now: clock.now, log, maxPending: 2 });
    try {
      bounded.record(sample('VALID', 'tok_1'));
      bounded.record(sample('VALID', 'tok_2'));
      sink.hold = true;
      sink.failuresLeft = 1;
      const failing = bounded.flush();
      bounded.record(sample('VALID', 'tok_3'));
      sink.finishWrite();
      await expect(failing).rejects.toThrow();
      // The oldest (tok_1) made room for the newest.
      expect(bounded.pendingCount()).toBe(2);
      expect(bounded.droppedCount()).toBe(1);
      await bounded.flush();
      expect(sink.totals()).toEqual({ [`${T0}|tok_2|VALID`]: 1, [`${T0}|tok_3|VALID`]: 1 });
    } finally {
      await bounded.close();
    }
  });

  it('counts a sample passed with a `same` object exactly like a fresh one, across minutes, flushes, failed writes and drops', async () => {
    const bounded = createUsageRecorder({ store: sink, now: clock.now, log, maxPending: 2 });
    try {
      const token = holder();
      const valid = sample('VALID', 'tok_1');
      const record = (): void => bounded.record(sample('VALID', 'tok_1'), clock.now().getTime(), token);
      record();
      bounded.record(valid);
      record();
      clock.advance(MINUTE_MS);
      record();
      await bounded.flush();
      expect(sink.totals()).toEqual({ [`${T0}|tok_1|VALID`]: 3, [`${T1}|tok_1|VALID`]: 1 });

      // A failed write puts its counters back; a sample passed with `same` counts into them, not into a lost one.
      sink.written = [];
      record();
      sink.failuresLeft = 1;
      await expect(bounded.flush()).rejects.toThrow('database unreachable');
      record();
      // tok_3 pushes tok_1's counter (2) out (maxPending 2); counting tok_1 again starts a new one, pushing tok_2 (1) out.
      bounded.record(sample('VALID', 'tok_2'));
      bounded.record(sample('VALID', 'tok_3'));
      record();
      expect(bounded.droppedCount()).toBe(3);
      await bounded.flush();
      expect(sink.totals()).toEqual({ [`${T1}|tok_3|VALID`]: 1, [`${T1}|tok_1|VALID`]: 1 });
    } finally {
      await bounded.close();
    }
  });

  it('counts again through a cached token\'s slot within the minute, keeps a busy token\'s counter across a write and lets a quiet one go', async () => {
    const busy = holder();
    const quiet = holder();
    const at = clock.now().getTime();
    expect(recorder.countAgain(busy, at)).toBe(false);
    recorder.record(sample('VALID', 'tok_1'), at, busy);
    expect(recorder.countAgain(busy, at)).toBe(true);
    expect(recorder.countAgain(busy, at + MINUTE_MS)).toBe(false);
    recorder.record(sample('VALID', 'tok_2'), at, quiet);
    expect(recorder.pendingCount()).toBe(3);
    await recorder.flush();
    expect(sink.totals()).toEqual({ [`${T0}|tok_1|VALID`]: 2, [`${T0}|tok_2|VALID`]: 1 });
    // Counted once since the last write: its counter left, and the cached token keeps nothing alive.
    expect(quiet.usageSlot).toBeNull();
    expect(recorder.countAgain(quiet, at)).toBe(false);
    // Counted more than once: its counter stays, at zero, and counts the next verification.
    expect(recorder.countAgain(busy, at)).toBe(true);
    expect(recorder.pendingCount()).toBe(1);
    await recorder.flush();
    expect(sink.totals()).toEqual({ [`${T0}|tok_1|VALID`]: 3, [`${T0}|tok_2|VALID`]: 1 });
    expect(busy.usageSlot).toBeNull();
    expect(recorder.pendingCount()).toBe(0);
  });

  it('puts back a failed batch with the counts a busy token\'s kept counter took meanwhile, each counted once', async () => {
    const busy = holder();
    const at = clock.now().getTime();
    const verified = (): void => {
      if (!recorder.countAgain(busy, at)) recorder.record(sample('VALID', 'tok_1'), at, busy);
    };
    verified();
    verified();
    await recorder.flush();
    verified();
    verified();
    sink.hold = true;
    const failing = recorder.flush();
    // Counted into the kept counter while the write is under way.
    verified();
    sink.failuresLeft = 1;
    sink.finishWrite();
    await expect(failing).rejects.toThrow('database unreachable');
    expect(recorder.pendingCount()).toBe(3);
    verified();
    await recorder.flush();
    expect(sink.totals()).toEqual({ [`${T0}|tok_1|VALID`]: 6 });
  });

  it('counts exactly when every cached verification tries its slot first, across minutes, flushes, failed writes and drops', async () => {
    const bounded = createUsageRecorder({ store: sink, now: clock.now, log, maxPending: 2 });
    try {
      const cached = holder();
      // What the verifier does for a cached token's VALID answer.
      const verified = (): void => {
        const at = clock.now().getTime();
        if (!bounded.countAgain(cached, at)) bounded.record(sample('VALID', 'tok_1'), at, cached);
      };
      verified();
      verified();
      clock.advance(MINUTE_MS);
      verified();
      await bounded.flush();
      expect(sink.totals()).toEqual({ [`${T0}|tok_1|VALID`]: 2, [`${T1}|tok_1|VALID`]: 1 });

      sink.written = [];
      verified();
      sink.failuresLeft = 1;
      await expect(bounded.flush()).rejects.toThrow('database unreachable');
      verified();
      verified();
      // tok_2 and tok_3 push both of tok_1's counters out (1 restored, 2 new); the next verification starts another, pushing tok_2 out.
      bounded.record(sample('VALID', 'tok_2'));
      bounded.record(sample('VALID', 'tok_3'));
      verified();
      expect(bounded.droppedCount()).toBe(4);
      await bounded.flush();
      expect(sink.totals()).toEqual({ [`${T1}|tok_3|VALID`]: 1, [`${T1}|tok_1|VALID`]: 1 });
    } finally {
      await bounded.close();
    }
  });

  it('starts a write as soon as flushAtPending counters are pending, without waiting for the timer, and loses none of them', async () => {
    const busy = createUsageRecorder({ store: sink, now: clock.now, log, flushAtPending: 3 });
    try {
      const cached = holder();
      busy.record(sample('VALID', 'tok_1'), clock.now().getTime(), cached);
      busy.record(sample('VALID', 'tok_2'));
      expect(sink.calls).toBe(0);
      // The third distinct counter starts the write; the sample that filled the batch is in it.
      busy.record(sample('VALID', 'tok_3'));
      expect(sink.calls).toBe(1);
      // Counted after the write began: into a fresh counter, not the one being written.
      busy.record(sample('VALID', 'tok_1'), clock.now().getTime(), cached);
      await busy.flush();
      expect(sink.written.map((batch) => batch.length)).toEqual([3, 1]);
      expect(sink.totals()).toEqual({ [`${T0}|tok_1|VALID`]: 2, [`${T0}|tok_2|VALID`]: 1, [`${T0}|tok_3|VALID`]: 1 });
      expect(busy.droppedCount()).toBe(0);
    } finally {
      await busy.close();
    }
  });

  it('does not start another early write while one is under way, nor after a failed one (the timer retries)', async () => {
    const busy = createUsageRecorder({ store: sink, now: clock.now, log, flushAtPending: 2 });
    try {
      sink.hold = true;
      busy.record(sample('VALID', 'tok_1'));
      busy.record(sample('VALID', 'tok_2'));
      expect(sink.calls).toBe(1);
      busy.record(sample('VALID', 'tok_3'));
      busy.record(sample('VALID', 'tok_4'));
      expect(sink.calls).toBe(1);
      sink.failuresLeft = 1;
      sink.finishWrite();
      await vi.waitFor(() => expect(sink.active).toBe(0));
      // The failed batch is back with the newer counts: four counters, and no write is started for them.
      busy.record(sample('VALID', 'tok_5'));
      expect(sink.calls).toBe(1);
      expect(busy.pendingCount()).toBe(5);
      await busy.flush();
      expect(Object.values(sink.totals()).reduce((sum, count) => sum + count, 0)).toBe(5);
      // A successful write lets volume start writes again.
      busy.record(sample('VALID', 'tok_6'));
      busy.record(sample('VALID', 'tok_7'));
      expect(sink.calls).toBe(3);
    } finally {
      await busy.close();
    }
  });

  it('counts a late sample of the last minute in that minute, even with a `same` object already counted in the new one', async () => {
    const cached = holder();
    const lastMinute = clock.now().getTime();
    recorder.record(sample('VALID', 'tok_1'), lastMinute, cached);
    clock.advance(MINUTE_MS);
    recorder.record(sample('VALID', 'tok_1'), clock.now().getTime(), cached);
    // Its clock was read before the minute turned.
    recorder.record(sample('VALID', 'tok_1'), lastMinute, cached);
    recorder.record(sample('VALID', 'tok_1'), clock.now().getTime(), cached);
    await recorder.flush();
    expect(sink.totals()).toEqual({ [`${T0}|tok_1|VALID`]: 2, [`${T1}|tok_1|VALID`]: 2 });
  });

  it('flushes on close', async () => {
    recorder.record(sample('VALID'));
    await recorder.close();
    expect(sink.totals()).toEqual({ [`${T0}|tok_a|VALID`]: 1 });
  });

  it('logs, rather than throws, when the last flush at close fails', async () => {
    recorder.record(sample('VALID'));
    sink.failuresLeft = 1;
    await expect(recorder.close()).resolves.toBeUndefined();
    expect(log.lines).toContainEqual({ level: 'error', details: expect.objectContaining({ lostSamples: 1 }), message: expect.any(String) });
  });
});

describe('createUsageRecorder timer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('flushes every interval, keeps the counts when a timed flush fails, and stops at close', async () => {
    const clock = createClock();
    const sink = new FakeSink();
    const log = fakeLog();
    const recorder = createUsageRecorder({ store: sink, now: clock.now, log, flushIntervalMs: 1_000 });
    recorder.record(sample('VALID'));
    sink.failuresLeft = 1;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.calls).toBe(1);
    expect(log.lines).toContainEqual({ level: 'warn', details: expect.objectContaining({ pendingSamples: 1 }), message: expect.stringMatching(/flush failed/) });

    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.totals()).toEqual({ '2026-01-05T10:00:00.000Z|tok_a|VALID': 1 });

    await recorder.close();
    recorder.record(sample('VALID'));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sink.calls).toBe(2);
  });
});

describeEachDialect('createUsageRecorder with UsageStore', (open) => {
  let database: Database;
  beforeEach(async () => {
    database = await open();
  });
  afterEach(async () => {
    await database.close();
  });

  it('writes 10,000 verifications of 10 tokens with one upsert statement', async () => {
    const counter = new StatementCounter();
    const store = new UsageStore(database.db.withPlugin(counter), database.capabilities);
    const clock = createClock();
    const recorder = createUsageRecorder({ store, now: clock.now, log: fakeLog() });
    try {
      for (let i = 0; i < 10_000; i += 1) recorder.record(sample(i % 7 === 0 ? 'INSUFFICIENT_SCOPE' : 'VALID', `tok_${i % 10}`, i % 2 === 0 ? 'cli_even' : null));
      await recorder.flush();
    } finally {
      await recorder.close();
    }
    expect(counter.statements.filter((kind) => kind === 'InsertQueryNode')).toHaveLength(1);

    const buckets = await new UsageStore(database.db).queryUsage({ organizationId: ORG, from: new Date('2026-01-05T00:00:00Z'), to: new Date('2026-01-06T00:00:00Z'), granularity: 'minute' });
    expect(buckets).toEqual([{ start: new Date('2026-01-05T10:00:00.000Z'), total: 10_000, counts: { VALID: 10_000 - 1_429, INSUFFICIENT_SCOPE: 1_429 } }]);
  });

  it('writes samples counted under a cached token and without it, for the same token and minute, as one row', async () => {
    const store = new UsageStore(database.db, database.capabilities);
    const clock = createClock();
    const recorder = createUsageRecorder({ store, now: clock.now, log: fakeLog() });
    const cached = holder();
    try {
      for (let i = 0; i < 3; i += 1) recorder.record(sample('VALID', 'tok_1'), clock.now().getTime(), cached);
      recorder.record(sample('VALID', 'tok_1'));
      recorder.record(sample('VALID', 'tok_1'));
      await recorder.flush();
    } finally {
      await recorder.close();
    }
    const rows = await database.db.selectFrom('usageCounts' as never).selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(Number((rows[0] as { count: number | string }).count)).toBe(5);
  });
});
