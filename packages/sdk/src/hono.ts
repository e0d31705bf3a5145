// @keyward/sdk/hono: protect a Hono app.
//
//   app.use(keyward({ verifier }));
//   app.get('/scans', requireScope('scans:read'), (c) => c.json(c.get('keyward')));
import type { Context, MiddlewareHandler } from 'hono';
import { authenticate, checkResource, checkScopes, type Presented } from './middleware/authenticate.ts';
import { assertScopeNames, normalizeIp, type KeywardMiddlewareOptions } from './middleware/options.ts';
import { rateLimitHeaders, type Refusal } from './middleware/refusal.ts';
import type { VerifiedToken } from './verifier/verify-answer.ts';

export type { Refusal } from './middleware/refusal.ts';
export type { VerifiedToken } from './verifier/verify-answer.ts';

/** The Variables keyward() sets: `c.get('keyward')`. */
export interface KeywardVariables {
  keyward: VerifiedToken;
  keywardPresented: Presented;
}
export type KeywardEnv = { Variables: KeywardVariables };
export type KeywardHonoOptions = KeywardMiddlewareOptions<Context>;

function send(c: Context, refusal: Refusal): Response {
  return new Response(JSON.stringify(refusal.body), { status: refusal.status, headers: refusal.headers });
}

/**
 * The client address on @hono/node-server (its `c.env.incoming` socket);
 * other runtimes should pass `ip` (e.g. from hono/conninfo or a trusted proxy header).
 */
function defaultIp(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

/**
 * Authenticates every request's bearer token: `c.get('keyward')` is the
 * verified token, or the request is refused (401, 403, 429, 503) as Keyward would.
 *
 * @example
 * const app = new Hono<KeywardEnv>();
 * app.use(keyward({ verifier }));
 */
export function keyward(options: KeywardHonoOptions): MiddlewareHandler<KeywardEnv> {
  if (options.scopes) assertScopeNames(options.scopes, 'keyward()');
  return async (c, next) => {
    const outcome = await authenticate({
      verifier: options.verifier,
      authorization: c.req.header('authorization'),
      scopes: options.scopes,
      require: options.require,
      resource: options.resource?.(c),
      cost: options.cost,
      ip: normalizeIp(options.ip ? options.ip(c) : defaultIp(c)),
    });
    if (!outcome.accepted) return send(c, outcome.refusal);
    c.set('keyward', outcome.token);
    if (outcome.presented) c.set('keywardPresented', outcome.presented);
    await next();
    for (const [name, value] of Object.entries(rateLimitHeaders(outcome.answer))) c.header(name, value);
  };
}

/**
 * Refuses with 403 insufficient_scope unless the verified token holds every scope.
 *
 * @example app.get('/scans', requireScope('scans:read'), handler);
 */
export function requireScope(...scopes: string[]): MiddlewareHandler<KeywardEnv> {
  assertScopeNames(scopes, 'requireScope()');
  return async (c, next) => {
    const refusal = checkScopes(c.get('keyward'), scopes);
    if (refusal) return send(c, refusal);
    await next();
  };
}

/**
 * Refuses with 403 unless the verified token may touch the resource `resolve` names.
 *
 * @example app.get('/projects/:id', requireResource((c) => c.req.param('id')), handler);
 */
export function requireResource(resolve: (c: Context<KeywardEnv>) => string | undefined): MiddlewareHandler<KeywardEnv> {
  return async (c, next) => {
    const refusal = await checkResource(c.get('keyward'), c.get('keywardPresented'), resolve(c));
    if (refusal) return send(c, refusal);
    await next();
  };
}
