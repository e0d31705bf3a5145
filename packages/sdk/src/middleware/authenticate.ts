// The framework-neutral steps of every adapter: read the bearer token, verify
// it, and say either "accepted" (with the token) or "refuse with this".
import type { Verifier } from '../verifier/create-verifier.ts';
import type { VerifiedToken, VerifyAnswer } from '../verifier/verify-answer.ts';
import { badAuthorizationRefusal, bearerToken, insufficientScopeRefusal, missingTokenRefusal, refusalFor, unavailableRefusal, type Refusal } from './refusal.ts';
import { isResourceId, missingScopes, resourceDecision } from './options.ts';

export type Outcome = { accepted: true; token: VerifiedToken; answer: VerifyAnswer } | { accepted: false; refusal: Refusal };

/** What a request presented, kept on it for requireResource(). */
export interface Presented {
  verifier: Verifier;
  token: string;
  ip: string | undefined;
}

export interface AuthenticateInput {
  verifier: Verifier;
  authorization: string | undefined | null;
  scopes?: readonly string[] | undefined;
  require?: string | undefined;
  resource?: string | undefined;
  cost?: number | undefined;
  ip: string | undefined;
}

/** Rejects only with errors that are not a refusal (e.g. KeywardRequestError, a bug in the route's question). */
export async function authenticate(input: AuthenticateInput): Promise<Outcome & { presented?: Presented }> {
  const presented = bearerToken(input.authorization);
  if (presented === null) return { accepted: false, refusal: missingTokenRefusal() };
  if (presented === false) return { accepted: false, refusal: badAuthorizationRefusal() };
  // A resource id that cannot exist: the token is still judged (401 before 403), spending nothing.
  const impossibleResource = input.resource !== undefined && !isResourceId(input.resource);
  let answer: VerifyAnswer;
  try {
    const about = impossibleResource ? { cost: 0 } : { resource: input.resource, cost: input.cost };
    answer = await input.verifier.verify(presented, { scopes: input.scopes, require: input.require, ip: input.ip, ...about });
  } catch (error) {
    const refusal = unavailableRefusal(error);
    if (refusal) return { accepted: false, refusal };
    throw error;
  }
  if (!answer.valid || !answer.token) return { accepted: false, refusal: refusalFor(answer, { scopes: input.scopes }) };
  if (impossibleResource) return { accepted: false, refusal: refusalFor({ valid: false, code: 'FORBIDDEN_RESOURCE' }) };
  return { accepted: true, token: answer.token, answer, presented: { verifier: input.verifier, token: presented, ip: input.ip } };
}

/** requireScope(): decided locally from the verified token's effective scopes. */
export function checkScopes(token: VerifiedToken | null | undefined, scopes: readonly string[]): Refusal | undefined {
  if (!token) return missingTokenRefusal();
  const missing = missingScopes(token, scopes);
  return missing.length > 0 ? insufficientScopeRefusal(missing) : undefined;
}

/**
 * requireResource(): decided locally when the token lists its resources;
 * otherwise asked of the server with cost 0, so the request spends no second credit.
 */
export async function checkResource(token: VerifiedToken | null | undefined, presented: Presented | undefined, resource: string | undefined): Promise<Refusal | undefined> {
  if (!token || !presented) return missingTokenRefusal();
  if (resource === undefined || !isResourceId(resource)) return refusalFor({ valid: false, code: 'FORBIDDEN_RESOURCE' });
  const local = resourceDecision(token, resource);
  if (local === true) return undefined;
  if (local === false) return refusalFor({ valid: false, code: 'FORBIDDEN_RESOURCE' });
  let answer: VerifyAnswer;
  try {
    answer = await presented.verifier.verify(presented.token, { resource, ip: presented.ip, cost: 0 });
  } catch (error) {
    const refusal = unavailableRefusal(error);
    if (refusal) return refusal;
    throw error;
  }
  return answer.valid ? undefined : refusalFor(answer);
}
