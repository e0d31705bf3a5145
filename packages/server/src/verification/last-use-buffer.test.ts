import { afterEach, describe, expect, it } from 'vitest';
import type { LastUse } from '../storage/verification-rows.ts';
import { LastUseBuffer, type LastUseHolder } from './last-use-buffer.ts';

/** Keeps copies of what each write was given; fails while told to. */
function createSink() {
  const writes: LastUse[][] = [];
  let failuresLeft = 0;
  return {
    writes,
    failNext: () => void (failuresLeft += 1),
    write: async (uses: readonly LastUse[]) => {
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        throw new Error('database unreachable');
      }
      writes.push(uses.map(({ tokenId, atMs, ip }) => ({ tokenId, atMs, ip })));
    },
  };
}

describe('LastUseBuffer', () => {
  let buffer: LastUseBuffer | null = null;
  afterEach(async () => {
    await buffer?.close();
    buffer = null;
  });

  it('writes only the latest use of each token, whether it came through a cached entry or not', async () => {
    const sink = createSink();
    buffer = new LastUseBuffer({ write: sink.write, intervalMs: 60_000 });
    const entry: LastUseHolder = { lastUseSlot: null };
    buffer.record('tok_1', 1_000, '10.0.0.1', entry);
    buffer.record('tok_1', 2_000, '10.0.0.2', entry);
    buffer.record('tok_1', 3_000, '10.0.0.3');
    buffer.record('tok_2', 1_500, null);
    buffer.record('tok_1', 4_000, '10.0.0.4', entry);
    expect(buffer.size).toBe(2);
    await buffer.flush();
    expect(sink.writes).toEqual([[{ tokenId: 'tok_1', atMs: 4_000, ip: '10.0.0.4' }, { tokenId: 'tok_2', atMs: 1_500, ip: null }]]);
  });

  it('lets a flushed use go: the entry neither keeps it alive nor updates it, and its next use is written next time', async () => {
    const sink = createSink();
    buffer = new LastUseBuffer({ write: sink.write, intervalMs: 60_000 });
    const entry: LastUseHolder = { lastUseSlot: null };
    buffer.record('tok_1', 1_000, null, entry);
    await buffer.flush();
    expect(entry.lastUseSlot).toBeNull();
    buffer.record('tok_1', 2_000, null, entry);
    await buffer.flush();
    expect(sink.writes).toEqual([[{ tokenId: 'tok_1', atMs: 1_000, ip: null }], [{ tokenId: 'tok_1', atMs: 2_000, ip: null }]]);
  });

  it('keeps the uses of a failed write, and a cached entry updates the kept use rather than a lost one', async () => {
    const sink = createSink();
    buffer = new LastUseBuffer({ write: sink.write, intervalMs: 60_000 });
    const entry: LastUseHolder = { lastUseSlot: null };
    buffer.record('tok_1', 1_000, null, entry);
    sink.failNext();
    await buffer.flush();
    expect(buffer.size).toBe(1);
    buffer.record('tok_1', 2_000, '10.0.0.9', entry);
    buffer.record('tok_1', 3_000, '10.0.0.9', entry);
    expect(buffer.size).toBe(1);
    await buffer.flush();
    expect(sink.writes).toEqual([[{ tokenId: 'tok_1', atMs: 3_000, ip: '10.0.0.9' }]]);
  });

  it('updates the same pending use for two entries of one token (an entry replaced while a request still held the old one)', async () => {
    const sink = createSink();
    buffer = new LastUseBuffer({ write: sink.write, intervalMs: 60_000 });
    const old: LastUseHolder = { lastUseSlot: null };
    const replacement: LastUseHolder = { lastUseSlot: null };
    buffer.record('tok_1', 1_000, null, old);
    buffer.record('tok_1', 2_000, null, replacement);
    await buffer.flush();
    // The old entry's slot still points at the written use; it must not be updated into, but counted anew.
    buffer.record('tok_1', 3_000, null, old);
    await buffer.flush();
    expect(sink.writes).toEqual([[{ tokenId: 'tok_1', atMs: 2_000, ip: null }], [{ tokenId: 'tok_1', atMs: 3_000, ip: null }]]);
  });
});
