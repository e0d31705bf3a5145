// A TCP proxy on 127.0.0.1 for the SDK's tests: puts a network between a
// verifier and a real Keyward server that a test can cut and restore, without
// touching the server itself.
import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  /** http://127.0.0.1:<port>, forwarding to the target. */
  baseUrl: string;
  /** Connections open through the proxy right now. */
  readonly openConnections: number;
  /** Drops every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** Forwards 127.0.0.1:<a free port> to `targetUrl` (an http://127.0.0.1:<port> URL). */
export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const pairs = new Set<[Socket, Socket]>();
  let isCut = false;

  const server = createServer((downstream) => {
    if (isCut) {
      downstream.destroy();
      return;
    }
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    const pair: [Socket, Socket] = [downstream, upstream];
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const cutAll = (): void => {
    for (const [downstream, upstream] of [...pairs]) {
      // resetAndDestroy: the verifier sees the connection fail, not a clean end of the stream.
      downstream.resetAndDestroy();
      upstream.destroy();
    }
    pairs.clear();
  };

  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get openConnections() {
      return pairs.size;
    },
    cut() {
      isCut = true;
      cutAll();
    },
    restore() {
      isCut = false;
    },
    close() {
      isCut = true;
      cutAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
