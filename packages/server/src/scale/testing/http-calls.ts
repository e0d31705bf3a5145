// JSON calls against a replica or the load balancer, answering status and body.
import { request } from 'node:http';

export interface Answer {
  status: number;
  body: any;
}

/**
 * One request on a connection of its own (`agent: false`), closed after the
 * answer. These tests stop, kill and restart the processes they call, and a
 * pooled keep-alive connection left idle across such steps can be one the
 * other side is closing just as the next request goes out on it (a reset the
 * server never saw a request for); a new connection per call leaves no such
 * race, and a call to a process that is gone fails at once with ECONNREFUSED.
 */
export function call(baseUrl: string, method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise<Answer>((resolve, reject) => {
    const outgoing = request(`${baseUrl}${path}`, { method, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = text === '' ? null : JSON.parse(text);
        } catch {
          // not JSON (metrics, a proxy's error page)
        }
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

/** The value below which `fraction` of the samples fall (nearest rank). */
export function percentile(samples: readonly number[], fraction: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] as number;
}

/** Calls `probe` until it answers true, at most `timeoutMs`; answers the milliseconds it took, or null. */
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 0): Promise<number | null> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await probe()) return performance.now() - started;
    if (intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return null;
}
