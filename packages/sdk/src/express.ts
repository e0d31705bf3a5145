// @keyward/sdk/express: protect an Express app.
//
//   app.use(keyward({ verifier }));
//   app.get('/scans', requireScope('scans:read'), handler);
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { authenticate, checkResource, checkScopes, type Presented } from './middleware/authenticate.ts';
import { assertScopeNames, normalizeIp, type KeywardMiddlewareOptions } from './middleware/options.ts';
import { rateLimitHeaders, type Refusal } from './middleware/refusal.ts';
import type { VerifiedToken } from './verifier/verify-answer.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified token, set by keyward(). */
      keyward?: VerifiedToken;
    }
  }
}

export type { Refusal } from './middleware/refusal.ts';
export type { VerifiedToken } from './verifier/verify-answer.ts';
export type KeywardExpressOptions = KeywardMiddlewareOptions<Request>;

const PRESENTED = Symbol('keyward.presented');
type WithPresented = Request & { [PRESENTED]?: Presented };

function send(response: Response, refusal: Refusal): void {
  response.status(refusal.status).set(refusal.headers).send(JSON.stringify(refusal.body));
}

/**
 * Authenticates every request's bearer token: `req.keyward` is the verified
 * token, or the request is refused (401, 403, 429, 503) as Keyward would.
 * The client address is `req.ip`: set Express's `trust proxy` when behind a proxy.
 *
 * @example app.use(keyward({ verifier }));
 */
export function keyward(options: KeywardExpressOptions): RequestHandler {
  if (options.scopes) assertScopeNames(options.scopes, 'keyward()');
  return (request, response, next) => {
    const ip = normalizeIp(options.ip ? options.ip(request) : request.ip);
    authenticate({
      verifier: options.verifier,
      authorization: request.headers.authorization,
      scopes: options.scopes,
      require: options.require,
      resource: options.resource?.(request),
      cost: options.cost,
      ip,
    }).then((outcome) => {
      if (!outcome.accepted) return send(response, outcome.refusal);
      request.keyward = outcome.token;
      (request as WithPresented)[PRESENTED] = outcome.presented;
      if (outcome.answer.rateLimit) response.set(rateLimitHeaders(outcome.answer));
      next();
    }, next);
  };
}

/**
 * Refuses with 403 insufficient_scope unless the verified token holds every scope.
 *
 * @example app.get('/scans', requireScope('scans:read'), handler);
 */
export function requireScope(...scopes: string[]): RequestHandler {
  assertScopeNames(scopes, 'requireScope()');
  return (request: Request, response: Response, next: NextFunction) => {
    const refusal = checkScopes(request.keyward, scopes);
    if (refusal) return send(response, refusal);
    next();
  };
}

/**
 * Refuses with 403 unless the verified token may touch the resource `resolve` names.
 *
 * @example app.get('/projects/:id', requireResource((req) => req.params.id), handler);
 */
export function requireResource(resolve: (request: Request) => string | undefined): RequestHandler {
  return (request, response, next) => {
    checkResource(request.keyward, (request as WithPresented)[PRESENTED], resolve(request)).then((refusal) => {
      if (refusal) return send(response, refusal);
      next();
    }, next);
  };
}
