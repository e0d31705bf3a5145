// The API behind the gateway: answers every request with the headers it
// received, so a test sees exactly what the gateway passed on.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoUpstream {
  /** host:port */
  address: string;
  /** The headers of every request that reached the upstream, in order. */
  received: IncomingHttpHeaders[];
  close(): Promise<void>;
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const received: IncomingHttpHeaders[] = [];
  const server = createServer((request, response) => {
    received.push(request.headers);
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: request.url, headers: request.headers }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
