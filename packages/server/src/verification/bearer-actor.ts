// Management-route bearer authentication through the verification path: the
// same decision and the same cache as POST /verify, so the two never disagree.
import { RateLimitedError, UnauthenticatedError, actorForToken, type Actor, type CompiledToken, type RateLimitState, type RequestFacts, type ServiceDeps, type VerifyCode } from '@keyward/core';
import type { StandingVerification, Verifier, VerifyOutcome } from './verifier.ts';

/** A 429 that carries the window it hit, for the RateLimit-* headers. */
export function tokenRateLimited(retryAfterSeconds: number, state: RateLimitState, message = 'This token is over its rate limit; try again later.'): RateLimitedError {
  return new RateLimitedError(retryAfterSeconds, message, { limit: state.limit, remaining: state.remaining, resetSeconds: retryAfterSeconds });
}

/** Why a token does not authenticate; the message is safe to show its holder. */
const REFUSALS: Partial<Record<VerifyCode, string>> = {
  MALFORMED: 'The token is malformed.',
  NOT_FOUND: 'The token is not valid.',
  REVOKED: 'The token has been revoked.',
  EXPIRED: 'The token has expired.',
  DISABLED: 'The token is disabled.',
  IP_NOT_ALLOWED: 'The token may not be used from this address.',
};

// The actor of a compiled token depends only on the token and its owner's
// access, both fixed for the entry's life; build it once per cache entry.
type TokenActor = Omit<Actor, keyof RequestFacts>;
/** A bearer token's actor without the request's facts (shared: never to be changed). */
export type BearerActor = Readonly<TokenActor>;
const actors = new WeakMap<CompiledToken, TokenActor>();

function tokenActorOf(deps: ServiceDeps, compiled: CompiledToken): TokenActor {
  let base = actors.get(compiled);
  if (!base) {
    const expiresAt = compiled.expiresAtMs === null ? null : new Date(compiled.expiresAtMs);
    base = actorForToken(deps, { ...compiled, expiresAt }, compiled.access!, { ip: null, userAgent: null, requestId: null });
    actors.set(compiled, base);
  }
  return base;
}

/**
 * The token's actor without the request's facts: shared by every request of
 * the cache entry, so never to be changed. For a caller that only reads its
 * organization and scopes (the verification fast path), it saves copying the
 * actor on every request.
 */
export async function authenticateBearerToken(verifier: Verifier, deps: ServiceDeps, plaintext: string, request: RequestFacts): Promise<BearerActor> {
  const outcome = await verifier.verify(plaintext, { ip: request.ip }, { entryPoint: 'management', spendQuota: false, request });
  return actorOf(deps, outcome);
}

/** A caller authenticated, with what the verification can stand for (`StandingVerification`), if anything. */
export interface StandingCaller {
  actor: BearerActor;
  standing: StandingVerification | undefined;
}

/**
 * As authenticateBearerToken, for a token whose cache key the caller keeps
 * (a connection's bearer, http/connection-callers.ts), and asks what the
 * verification can stand for: later requests of the same connection then pass
 * `Verifier.reaffirm` instead of verifying again.
 */
export async function authenticateStandingBearer(verifier: Verifier, deps: ServiceDeps, plaintext: string, request: RequestFacts, cacheKey: string): Promise<StandingCaller> {
  const outcome = await verifier.verify(plaintext, { ip: request.ip }, { entryPoint: 'management', spendQuota: false, request, cacheKey, standing: true });
  return { actor: actorOf(deps, outcome), standing: outcome.standing };
}

function actorOf(deps: ServiceDeps, outcome: VerifyOutcome): BearerActor {
  const { result, compiled } = outcome;
  if (result.valid && compiled) return tokenActorOf(deps, compiled);
  if (result.code === 'RATE_LIMITED') {
    const state = result.rateLimit;
    const retry = outcome.retryAfterSeconds ?? 1;
    if (state) throw tokenRateLimited(retry, state);
    throw new RateLimitedError(retry, 'Too many failed attempts from this address; try again later.');
  }
  throw new UnauthenticatedError(REFUSALS[result.code] ?? 'The token is not valid.', 'invalid');
}

export async function authenticateBearer(verifier: Verifier, deps: ServiceDeps, plaintext: string, request: RequestFacts): Promise<Actor> {
  return { ...(await authenticateBearerToken(verifier, deps, plaintext, request)), ...request };
}
