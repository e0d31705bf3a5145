import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatSseMessage, openSseConnection, type SseConnectionOptions, type SseSink } from './sse-connection.ts';

/** A socket stand-in: it accepts writes until `capacity` bytes are pending, and drains on demand. */
class FakeSink extends EventEmitter implements SseSink {
  chunks: string[] = [];
  writableLength = 0;
  ended = false;
  destroyed = false;
  private readonly capacity: number;
  constructor(capacity = Infinity) {
    super();
    this.capacity = capacity;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    this.writableLength += chunk.length;
    return this.writableLength < this.capacity;
  }
  drain(): void {
    this.writableLength = 0;
    this.emit('drain');
  }
  end(): void {
    this.ended = true;
    this.emit('close');
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('openSseConnection', () => {
  const onClose = vi.fn();
  const options = (extra: Partial<SseConnectionOptions> = {}): SseConnectionOptions => ({ heartbeatMs: 15_000, maxBufferedBytes: 1_000, maxStalledHeartbeats: 2, onClose, ...extra });
  beforeEach(() => {
    vi.useFakeTimers();
    onClose.mockReset();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('frames messages with id, event and one line of JSON data', () => {
    expect(formatSseMessage({ id: 'b-1', event: 'invalidate', data: { type: 'organization.changed', organizationId: 'org_1' } })).toBe(
      'id: b-1\nevent: invalidate\ndata: {"type":"organization.changed","organizationId":"org_1"}\n\n',
    );
    expect(formatSseMessage({ event: 'reset', data: { reason: 'gap' } })).toBe('event: reset\ndata: {"reason":"gap"}\n\n');
  });

  it('writes the retry line, messages, and a heartbeat comment every interval', () => {
    const sink = new FakeSink();
    const connection = openSseConnection(sink, options());
    connection.sendRetry(2000);
    connection.send({ event: 'ready', data: {} });
    vi.advanceTimersByTime(30_000);
    expect(sink.chunks).toEqual(['retry: 2000\n\n', 'event: ready\ndata: {}\n\n', ': heartbeat\n\n', ': heartbeat\n\n']);
  });

  it('ends cleanly once, stops the heartbeat and reports the close', () => {
    const sink = new FakeSink();
    const connection = openSseConnection(sink, options());
    connection.end();
    connection.end();
    vi.advanceTimersByTime(60_000);
    expect(sink).toMatchObject({ ended: true, destroyed: false, chunks: [] });
    expect(connection.isOpen).toBe(false);
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('reports a client that went away, and writes nothing after', () => {
    const sink = new FakeSink();
    const connection = openSseConnection(sink, options());
    sink.emit('close');
    connection.send({ event: 'invalidate', data: {} });
    vi.advanceTimersByTime(60_000);
    expect(sink.chunks).toEqual([]);
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('cuts a client whose unsent bytes pass the bound', () => {
    const sink = new FakeSink(100);
    const connection = openSseConnection(sink, options({ maxBufferedBytes: 200 }));
    for (let n = 0; n < 10 && connection.isOpen; n += 1) connection.send({ event: 'invalidate', data: { padding: 'x'.repeat(50) } });
    expect(sink.destroyed).toBe(true);
    expect(sink.chunks.length).toBeLessThan(10);
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it('cuts a client that stays congested through the stalled heartbeats, but not one that drains', () => {
    const slow = new FakeSink(10);
    openSseConnection(slow, options()).send({ event: 'invalidate', data: {} });
    const reading = new FakeSink(10);
    openSseConnection(reading, options()).send({ event: 'invalidate', data: {} });

    vi.advanceTimersByTime(15_000);
    reading.drain();
    vi.advanceTimersByTime(15_000);
    reading.drain();
    expect(slow.destroyed).toBe(true);
    expect(reading.destroyed).toBe(false);
  });

  it('cuts instead of ending when the client is not reading', () => {
    const sink = new FakeSink(10);
    const connection = openSseConnection(sink, options());
    connection.send({ event: 'invalidate', data: {} });
    connection.end();
    expect(sink).toMatchObject({ destroyed: true, ended: false });
  });
});
