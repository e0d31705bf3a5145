// Security headers on every response, request ids, and the 404/405 edge.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

export function securityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'strict-origin-when-cross-origin');
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CSP);
  reply.header('x-frame-options', 'SAMEORIGIN');
  reply.header('x-request-id', request.id);
  // HSTS means something only over TLS (directly or via a trusted proxy).
  if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
}

/** Keeps a caller's request id when it is harmless, so logs can be joined across services. */
export function requestIdFor(request: { headers: Record<string, string | string[] | undefined> }): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && /^[A-Za-z0-9._-]{8,64}$/.test(incoming) ? incoming : randomUUID();
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
