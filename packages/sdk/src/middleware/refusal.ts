// The one place a refused verification becomes an HTTP answer, for every
// framework adapter: RFC 9457 problem bodies and RFC 6750 challenges, the
// same statuses and codes as the Keyward server itself.
import { KeywardUnavailableError } from '../errors.ts';
import type { VerifyAnswer, VerifyCode } from '../verifier/verify-answer.ts';

export type ProblemCode = 'unauthenticated' | 'insufficient_scope' | 'forbidden' | 'rate_limited' | 'service_unavailable';

export interface Problem {
  type: `urn:keyward:problem:${ProblemCode}`;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
}

/** What an adapter sends: status, headers and an `application/problem+json` body. */
export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: Problem;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

const STATUS: Record<ProblemCode, number> = {
  unauthenticated: 401,
  insufficient_scope: 403,
  forbidden: 403,
  rate_limited: 429,
  service_unavailable: 503,
};
const TITLE: Record<ProblemCode, string> = {
  unauthenticated: 'Authentication required',
  insufficient_scope: 'Insufficient scope',
  forbidden: 'Forbidden',
  rate_limited: 'Too many requests',
  service_unavailable: 'Service unavailable',
};
const INVALID_DETAIL: Partial<Record<VerifyCode, string>> = {
  MALFORMED: 'The token is malformed.',
  NOT_FOUND: 'The token is not valid.',
  EXPIRED: 'The token has expired.',
  REVOKED: 'The token has been revoked.',
  DISABLED: 'The token is disabled.',
};
/** Seconds a client should wait while Keyward is away, as the server says it. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

function quoted(value: string): string {
  // eslint-disable-next-line no-control-regex
  const printable = value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/[^\u0020-\u007e]/gu, '?');
  return `"${printable.replace(/["\\]/g, '\\$&')}"`;
}

function problem(code: ProblemCode, detail: string, headers: Record<string, string> = {}): Refusal {
  return { status: STATUS[code], headers: { 'content-type': PROBLEM_CONTENT_TYPE, ...headers }, body: { type: `urn:keyward:problem:${code}`, title: TITLE[code], status: STATUS[code], detail, code } };
}

function invalidToken(detail: string): Refusal {
  return problem('unauthenticated', detail, { 'www-authenticate': `Bearer realm="keyward", error="invalid_token", error_description=${quoted(detail)}` });
}

/** No bearer token on the request. */
export function missingTokenRefusal(): Refusal {
  return problem('unauthenticated', 'This route needs a bearer token.', { 'www-authenticate': 'Bearer realm="keyward"' });
}

/** An Authorization header that is not `Bearer <token>`. */
export function badAuthorizationRefusal(): Refusal {
  return invalidToken('The Authorization header must be "Bearer <token>".');
}

/** A token short of the scopes a route needs (RFC 6750 insufficient_scope, naming them). */
export function insufficientScopeRefusal(scopes: readonly string[]): Refusal {
  const named = scopes.join(' ');
  return problem('insufficient_scope', named ? `The token lacks the scope ${named}.` : 'The token lacks a scope this route needs.', {
    'www-authenticate': `Bearer realm="keyward", error="insufficient_scope"${named ? `, scope=${quoted(named)}` : ''}`,
  });
}

function forbidden(detail: string): Refusal {
  return problem('forbidden', detail, { 'www-authenticate': 'Bearer realm="keyward", error="insufficient_scope"' });
}

/**
 * The answer for a refused verification.
 *
 * @example
 * const refusal = refusalFor(answer, { scopes: ['scans:read'] });
 * reply.code(refusal.status).headers(refusal.headers).send(refusal.body);
 */
export function refusalFor(answer: VerifyAnswer, asked: { scopes?: readonly string[] | undefined } = {}, now: () => number = Date.now): Refusal {
  switch (answer.code) {
    case 'INSUFFICIENT_SCOPE':
      return insufficientScopeRefusal(asked.scopes ?? []);
    case 'FORBIDDEN_RESOURCE':
      return forbidden('The token may not touch this resource.');
    case 'IP_NOT_ALLOWED':
      return forbidden('The token may not be used from this address.');
    case 'USAGE_EXCEEDED':
      return forbidden("The token's usage quota is spent.");
    case 'RATE_LIMITED': {
      const state = answer.rateLimit;
      if (!state) return problem('rate_limited', 'Too many attempts; try again later.', { 'retry-after': '60' });
      const resetSeconds = Math.max(1, Math.ceil((Date.parse(state.resetAt) - now()) / 1000));
      return problem('rate_limited', 'The token has used up its rate limit; try again later.', {
        'retry-after': String(resetSeconds),
        'ratelimit-limit': String(Math.max(0, Math.floor(state.limit))),
        'ratelimit-remaining': String(Math.max(0, Math.floor(state.remaining))),
        'ratelimit-reset': String(resetSeconds),
      });
    }
    default:
      return invalidToken(INVALID_DETAIL[answer.code] ?? 'The token is not valid.');
  }
}

/** The answer when Keyward cannot be asked: fail closed with 503, or undefined for errors that are not ours to answer. */
export function unavailableRefusal(error: unknown): Refusal | undefined {
  if (!(error instanceof KeywardUnavailableError)) return undefined;
  return problem('service_unavailable', 'Token verification is unavailable; try again shortly.', { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) });
}

/** RateLimit-* headers for an accepted request whose token has a rate limit. */
export function rateLimitHeaders(answer: VerifyAnswer, now: () => number = Date.now): Record<string, string> {
  const state = answer.rateLimit;
  if (!state) return {};
  return {
    'ratelimit-limit': String(Math.max(0, Math.floor(state.limit))),
    'ratelimit-remaining': String(Math.max(0, Math.floor(state.remaining))),
    'ratelimit-reset': String(Math.max(0, Math.ceil((Date.parse(state.resetAt) - now()) / 1000))),
  };
}

/** The bearer token of an Authorization header: null when absent, false when the header is not a bearer token. */
export function bearerToken(header: string | undefined | null): string | null | false {
  if (header === undefined || header === null || header === '') return null;
  const match = /^Bearer +([!-~]{1,512}) *$/i.exec(header);
  return match?.[1] ?? false;
}
