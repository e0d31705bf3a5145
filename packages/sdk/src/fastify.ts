// @keyward/sdk/fastify: protect a Fastify app.
//
//   await app.register(keyward, { verifier });
//   app.get('/scans', { preHandler: requireScope('scans:read') }, handler);
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { authenticate, checkResource, checkScopes, type Presented } from './middleware/authenticate.ts';
import { assertScopeNames, normalizeIp, type KeywardMiddlewareOptions } from './middleware/options.ts';
import { rateLimitHeaders, type Refusal } from './middleware/refusal.ts';
import type { VerifiedToken } from './verifier/verify-answer.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified token, set by the keyward plugin's onRequest hook. */
    keyward: VerifiedToken | null;
  }
}

export type { Refusal } from './middleware/refusal.ts';
export type { VerifiedToken } from './verifier/verify-answer.ts';
export type KeywardFastifyOptions = KeywardMiddlewareOptions<FastifyRequest>;

// A symbol decoration rather than a WeakMap: the request's shape stays fixed, and per-request
// WeakMap entries cost the garbage collector. JSON and log serializers skip symbol keys.
const PRESENTED = Symbol('keyward.presented');
type WithPresented = FastifyRequest & { [PRESENTED]: Presented | null };

function send(reply: FastifyReply, refusal: Refusal): FastifyReply {
  return reply.code(refusal.status).headers(refusal.headers).send(JSON.stringify(refusal.body));
}

const plugin: FastifyPluginAsync<KeywardFastifyOptions> = async (app, options) => {
  if (options.scopes) assertScopeNames(options.scopes, 'keyward plugin');
  app.decorateRequest('keyward', null);
  app.decorateRequest(PRESENTED, null);
  // Callback-style hooks: Fastify runs them without wrapping a promise of its own around each.
  app.addHook('onRequest', (request, reply, done) => {
    authenticate({
      verifier: options.verifier,
      authorization: request.headers.authorization,
      scopes: options.scopes,
      require: options.require,
      resource: options.resource?.(request),
      cost: options.cost,
      ip: normalizeIp(options.ip ? options.ip(request) : request.ip),
    }).then((outcome) => {
      // A refused request is answered here, and the route never runs (no done()).
      if (!outcome.accepted) return void send(reply, outcome.refusal);
      request.keyward = outcome.token;
      if (outcome.presented) (request as WithPresented)[PRESENTED] = outcome.presented;
      if (outcome.answer.rateLimit) reply.headers(rateLimitHeaders(outcome.answer));
      done();
    }, done);
  });
};

/**
 * Authenticates every request of the app it is registered on (it is not
 * encapsulated): `request.keyward` is the verified token, or the request is
 * refused (401, 403, 429, 503) as Keyward would. The client address is
 * `request.ip`: set Fastify's `trustProxy` when behind a proxy.
 *
 * @example await app.register(keyward, { verifier });
 */
export const keyward = fp(plugin, { fastify: '5.x', name: '@keyward/sdk' });
export default keyward;

/**
 * A preHandler refusing with 403 insufficient_scope unless the token holds every scope.
 *
 * @example app.get('/scans', { preHandler: requireScope('scans:read') }, handler);
 */
export function requireScope(...scopes: string[]): preHandlerHookHandler {
  assertScopeNames(scopes, 'requireScope()');
  return (request, reply, done) => {
    const refusal = checkScopes(request.keyward, scopes);
    if (refusal) return void send(reply, refusal);
    done();
  };
}

/**
 * A preHandler refusing with 403 unless the token may touch the resource `resolve` names.
 *
 * @example app.get('/projects/:id', { preHandler: requireResource((request) => (request.params as { id: string }).id) }, handler);
 */
export function requireResource(resolve: (request: FastifyRequest) => string | undefined): preHandlerAsyncHookHandler {
  return async (request, reply) => {
    const refusal = await checkResource(request.keyward, (request as WithPresented)[PRESENTED] ?? undefined, resolve(request));
    if (refusal) return send(reply, refusal);
  };
}
