// Security headers on every response, request ids, and the 404/405 edge.
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PROBLEM_CONTENT_TYPE, problem, type Problem } from './problem.ts';

export const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

const STATIC_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'x-frame-options': 'SAMEORIGIN',
};

export function securityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.headers(STATIC_HEADERS);
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CSP);
  reply.header('x-request-id', request.id);
  // HSTS means something only over TLS (directly or via a trusted proxy).
  if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
}

/**
 * The verification entry points answer JSON (or nothing) to machines: SPEC §3's
 * security headers with a CSP that allows nothing at all (nothing in a JSON answer
 * needs a source) and `no-store`, since every answer describes a token as it is now.
 * One shared object, set with the request id in one hook.
 */
export const API_CSP = "default-src 'none'; frame-ancestors 'self'";
export const API_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'content-security-policy': API_CSP,
  'cache-control': 'no-store',
};

export function apiSecurityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.headers(API_HEADERS);
  reply.header('x-request-id', request.id);
  if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
}

/**
 * This process's request ids: shaped as a UUID (8-4-4-4-12 hex digits, what log
 * tools and uuid columns expect), unique across processes and restarts. The
 * first 80 bits are random once per process and the last 48 count its
 * requests. A random UUID per request cost ~0.5 µs under load (refilling its
 * entropy buffer and formatting it); an id needs to be unique, not secret.
 */
const REQUEST_ID_HEAD = ((hex: string) => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-`)(randomBytes(10).toString('hex'));
const REQUEST_COUNTER_LIMIT = 2 ** 48;
let requestsCounted = 0;

/** A new request id of this process (see REQUEST_ID_HEAD). */
export function newRequestId(): string {
  requestsCounted = (requestsCounted + 1) % REQUEST_COUNTER_LIMIT;
  return REQUEST_ID_HEAD + requestsCounted.toString(16).padStart(12, '0');
}

/** Keeps a caller's request id when it is harmless, so logs can be joined across services. */
export function requestIdFor(request: { headers: Record<string, string | string[] | undefined> }): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && /^[A-Za-z0-9._-]{8,64}$/.test(incoming) ? incoming : newRequestId();
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request. There is no
 * code for 431 or 408 in the catalog, so they keep their status and answer the
 * nearest family: oversized headers or URL are `payload_too_large` (too big,
 * send less), a request that never finished arriving is `validation_failed`.
 */
function clientErrorProblem(error: ConnectionError): Problem {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return problem('payload_too_large', 'The URL and headers are over the size limit; send a shorter URL or fewer headers.', { status: 431, title: 'Request header fields too large' });
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return problem('validation_failed', 'The request did not arrive in time.', { status: 408, title: 'Request timeout', errors: [] });
  return problem('validation_failed', 'The request is not valid HTTP.', { errors: [] });
}

/**
 * Fastify's clientErrorHandler: the same problem+json and security headers as
 * every other answer, written on the socket, which is then closed.
 */
export function answerClientError(error: ConnectionError, socket: Socket): void {
  // A reset connection has no one left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const answer = clientErrorProblem(error);
    const body = JSON.stringify(answer);
    const headers: Record<string, string | number> = {
      'content-type': PROBLEM_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      connection: 'close',
      ...STATIC_HEADERS,
      'content-security-policy': CSP,
      'x-request-id': newRequestId(),
    };
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}`).join('\r\n');
    socket.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\n${head}\r\n\r\n${body}`);
  }
  socket.destroy(error);
}

/**
 * Fastify answers 404 for a known path with the wrong method; we answer 405
 * with Allow. Routes are collected as they are added.
 */
export function createMethodIndex(app: FastifyInstance) {
  const routes: Array<{ methods: string[]; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const methods = ([] as string[]).concat(route.method);
    const source = route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+');
    routes.push({ methods, pattern: new RegExp(`^${source}/?$`) });
  });
  return (path: string): string[] => {
    const allowed = new Set<string>();
    for (const route of routes) if (route.pattern.test(path)) route.methods.forEach((method) => allowed.add(method));
    return [...allowed].sort();
  };
}

/**
 * Where a request value holds a NUL character, if anywhere. PostgreSQL cannot
 * store NUL in text, so it is refused at the edge as bad input rather than
 * failing in the database as a 500. Iterative, so deep input cannot overflow.
 */
export function findNulCharacter(value: unknown, root: string): string | null {
  const pending: Array<[unknown, string]> = [[value, root]];
  while (pending.length > 0) {
    const [current, path] = pending.pop() as [unknown, string];
    if (typeof current === 'string') {
      if (current.includes('\u0000')) return path;
    } else if (Array.isArray(current)) {
      current.forEach((item, index) => pending.push([item, path ? `${path}/${index}` : String(index)]));
    } else if (current !== null && typeof current === 'object') {
      for (const [key, item] of Object.entries(current)) {
        const child = path ? `${path}/${key}` : key;
        if (key.includes('\u0000')) return path || 'body';
        pending.push([item, child]);
      }
    }
  }
  return null;
}
