// What a verification answers (SPEC §4 and §11). A refusal is a value, not an
// error: resource servers branch on `code`.
import type { Role } from '../roles.ts';
import type { TokenKind } from '../tokens/token-format.ts';
import type { ResourceRef, TokenOwner } from '../types.ts';

export const VERIFY_CODES = [
  'VALID',
  'MALFORMED',
  'NOT_FOUND',
  'EXPIRED',
  'REVOKED',
  'DISABLED',
  'INSUFFICIENT_SCOPE',
  'FORBIDDEN_RESOURCE',
  'IP_NOT_ALLOWED',
  'RATE_LIMITED',
  'USAGE_EXCEEDED',
] as const;

export type VerifyCode = (typeof VERIFY_CODES)[number];

/** The verified token as a protected API needs it: identity and effective rights, nothing secret. */
export interface VerifiedToken {
  id: string;
  name: string;
  kind: TokenKind;
  owner: TokenOwner;
  organizationId: string;
  /** Effective concrete scopes (capped by the owner's current role), sorted. */
  scopes: string[];
  permission: Role;
  /** Ranked effective resources; empty when the token reaches every resource its owner can. */
  resources: ResourceRef[];
  /** ISO 8601, as every answer carries it (a string costs a cache less than a `Date`). */
  expiresAt: string | null;
  metadata: Record<string, unknown>;
}

export interface RateLimitState {
  limit: number;
  remaining: number;
  resetAt: Date;
}

export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  token?: VerifiedToken;
  rateLimit?: RateLimitState;
  /** Credits left, when the token has a quota. */
  remaining?: number;
}

/** What the caller of a verification asks for. */
export interface VerifyRequest {
  /** Every listed scope is required. */
  scopes?: readonly string[] | undefined;
  /** A `require` expression over scopes (AND, OR, parentheses); checked besides `scopes`. */
  require?: string | undefined;
  /** A resource id the request touches. */
  resource?: string | undefined;
  /** The client address the token was presented from. */
  ip?: string | null | undefined;
  /** Credits to spend when the token has a quota (default 1). */
  cost?: number | undefined;
}
