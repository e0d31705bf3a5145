// What a verifier answers: the JSON of POST /api/v1/verify, as is. Dates stay
// the ISO 8601 strings the server sent (`expiresAt`, `resetAt`), so a cached
// answer and a fresh one are the same value.
import type { VerifyCode } from '../../../core/src/verification/verify-result.ts';

export type { VerifyCode };

/** A verified token as a protected API needs it: identity and effective rights, nothing secret. */
export interface VerifiedToken {
  id: string;
  name: string;
  kind: 'personal' | 'client';
  owner: { type: 'user' | 'client'; id: string };
  organizationId: string;
  /** Effective concrete scopes (capped by the owner's current role), sorted. */
  scopes: string[];
  permission: 'viewer' | 'member' | 'admin' | 'owner';
  /** Ranked effective resources; empty when the token reaches every resource its owner can. */
  resources: Array<{ id: string; type: string; name: string }>;
  /** ISO 8601, or null for a token that does not expire. */
  expiresAt: string | null;
  metadata: Record<string, unknown>;
}

export interface RateLimitAnswer {
  limit: number;
  remaining: number;
  /** ISO 8601. */
  resetAt: string;
}

/**
 * The answer to a verification; a refusal is a value, not an error.
 *
 * @example
 * const answer = await verifier.verify(presented, { scopes: ['scans:read'] });
 * if (!answer.valid) console.log(answer.code); // e.g. 'REVOKED'
 */
export interface VerifyAnswer {
  valid: boolean;
  code: VerifyCode;
  token?: VerifiedToken;
  rateLimit?: RateLimitAnswer;
  /** Credits left, when the token has a quota. */
  remaining?: number;
}

/** What a verification asks, besides the token itself. */
export interface VerifyQuestion {
  /** Every listed scope is required. */
  scopes?: readonly string[] | undefined;
  /** A `require` expression over scopes, e.g. `scans:read AND (clearances:read OR clearances:write)`. */
  require?: string | undefined;
  /** A resource id the request touches. */
  resource?: string | undefined;
  /** The client address the token was presented from (needed for tokens with an IP allowlist). */
  ip?: string | undefined;
  /** Credits to spend on a token with a quota (server default 1; 0 checks without spending). */
  cost?: number | undefined;
}
