// One Server-Sent Events response: framing, heartbeats and backpressure. It
// knows nothing about Keyward events; the events route decides what to send.

/** What a connection writes to: in production the raw `ServerResponse`. */
export interface SseSink {
  write(chunk: string): boolean;
  end(): void;
  destroy(): void;
  readonly writableLength: number;
  on(event: 'drain' | 'close', listener: () => void): unknown;
}

export interface SseMessage {
  id?: string;
  event: string;
  data: unknown;
}

export interface SseConnectionOptions {
  /** A comment line this often keeps proxies and load balancers from closing an idle stream. */
  heartbeatMs: number;
  /** Unsent bytes beyond this mean the client stopped reading: the stream is cut. */
  maxBufferedBytes: number;
  /** Heartbeats in a row that find the client still not reading before the stream is cut. */
  maxStalledHeartbeats: number;
  /** Called once, however the stream ended (by us, by the client, or cut). */
  onClose: () => void;
}

export interface SseConnection {
  readonly isOpen: boolean;
  /** Tells EventSource how long to wait before reconnecting. */
  sendRetry(milliseconds: number): void;
  send(message: SseMessage): void;
  /** Ends the response cleanly, unless the client is not reading, in which case it is cut. */
  end(): void;
}

/** Ids and event names are ours and JSON has no raw newlines, so every field stays on one line. */
export function formatSseMessage(message: SseMessage): string {
  const id = message.id === undefined ? '' : `id: ${message.id}\n`;
  return `${id}event: ${message.event}\ndata: ${JSON.stringify(message.data)}\n\n`;
}

/**
 * Starts the heartbeat on an already-started `text/event-stream` response.
 *
 * @example
 * reply.hijack();
 * reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
 * const connection = openSseConnection(reply.raw, { heartbeatMs: 15_000, maxBufferedBytes: 1 << 20, maxStalledHeartbeats: 2, onClose });
 * connection.send({ event: 'ready', data: {} });
 */
export function openSseConnection(sink: SseSink, options: SseConnectionOptions): SseConnection {
  let isOpen = true;
  // Set when a write found the socket buffer full, cleared when it drains.
  let isCongested = false;
  let stalledHeartbeats = 0;

  const close = (): void => {
    if (!isOpen) return;
    isOpen = false;
    clearInterval(heartbeat);
    options.onClose();
  };
  // A client that does not read would hold memory (ours and the kernel's) for ever;
  // cut it, and it reconnects and starts over from a reset.
  const cut = (): void => {
    close();
    sink.destroy();
  };
  const write = (chunk: string): void => {
    if (!isOpen) return;
    if (!sink.write(chunk)) isCongested = true;
    if (sink.writableLength > options.maxBufferedBytes) cut();
  };

  const heartbeat = setInterval(() => {
    stalledHeartbeats = isCongested ? stalledHeartbeats + 1 : 0;
    if (stalledHeartbeats >= options.maxStalledHeartbeats) return cut();
    write(': heartbeat\n\n');
  }, options.heartbeatMs);
  sink.on('drain', () => {
    isCongested = false;
    stalledHeartbeats = 0;
  });
  sink.on('close', close);

  return {
    get isOpen() {
      return isOpen;
    },
    sendRetry: (milliseconds) => write(`retry: ${milliseconds}\n\n`),
    send: (message) => write(formatSseMessage(message)),
    end() {
      if (!isOpen) return;
      if (isCongested) return cut();
      close();
      sink.end();
    },
  };
}
