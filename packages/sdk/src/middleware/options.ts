// What every adapter's keyward(...) accepts, and the checks they share.
import { isScopeName } from '../../../core/src/scopes/scope-catalog.ts';
import type { Verifier } from '../verifier/create-verifier.ts';
import type { VerifiedToken } from '../verifier/verify-answer.ts';

export interface KeywardMiddlewareOptions<Request> {
  verifier: Verifier;
  /** Scopes every request must hold; routes can ask for more with requireScope(). */
  scopes?: readonly string[];
  /** A `require` expression every request must satisfy. */
  require?: string;
  /** The resource a request touches, if the whole app is per-resource. */
  resource?: (request: Request) => string | undefined;
  /** Credits each request spends on a token with a quota (server default 1). */
  cost?: number;
  /** The client address to verify IP allowlists against; each adapter has a sensible default (see README). */
  ip?: (request: Request) => string | undefined;
}

/** Throws at setup, not per request, when a route names a scope that cannot exist. */
export function assertScopeNames(scopes: readonly string[], where: string): void {
  for (const scope of scopes) {
    if (!isScopeName(scope)) throw new TypeError(`${where}: "${scope}" is not a scope name (area:action, e.g. scans:read)`);
  }
}

/** Scopes of `scopes` the token lacks. */
export function missingScopes(token: VerifiedToken, scopes: readonly string[]): string[] {
  return scopes.filter((scope) => !token.scopes.includes(scope));
}

/** The shape of every Keyward id (the server's `Id` schema): anything else names no resource. */
export const RESOURCE_ID_PATTERN = /^[a-z]{3}_[0-9A-Za-z]{1,64}$/;

/**
 * Whether `resource` can name a Keyward resource at all. The ids a route
 * passes come from its requests (a path parameter, say), so a malformed one is
 * a request for something that cannot exist: refused as a forbidden resource,
 * never sent to Keyward, which would refuse the question itself with a 400.
 */
export function isResourceId(resource: string): boolean {
  return RESOURCE_ID_PATTERN.test(resource);
}

/**
 * Whether the token may touch `resource` without asking the server: `true`
 * when its ranked grants list it, `false` when they exist and do not, and
 * `undefined` when the token reaches every resource its owner can (the server
 * knows which those are).
 */
export function resourceDecision(token: VerifiedToken, resource: string): boolean | undefined {
  if (token.resources.length === 0) return undefined;
  return token.resources.some((granted) => granted.id === resource);
}

/** Strips the IPv4-mapped IPv6 prefix Node puts on dual-stack sockets. */
export function normalizeIp(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
