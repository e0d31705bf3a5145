// Keys brought from another system (issue 13's import). They keep their own
// format: a configured legacy prefix stands in for Keyward's checksum
// pre-check, and a key imported as a bare SHA-256 hash (as many key services
// store them) is looked up by that digest until its first use re-hashes it
// under the keyring.
import { createHash } from 'node:crypto';
import { candidateDigests, type Keyring } from './keyring.ts';
import type { TokenPrefixes } from './token-format.ts';

/** How a token's digest was made: an HMAC under the keyring, or a plain SHA-256 of an imported key. */
export type TokenHashKind = 'hmac' | 'sha256';

/**
 * The `secretVersion` stored with a SHA-256 digest. Keyring versions are
 * letters and digits only, so this can never name one: the verifier sees "not
 * the current version" and re-hashes the key on its first use.
 */
export const SHA256_SECRET_VERSION = 'sha256-import';

/** Legacy keys are shorter than anything that could hide a payload, and long enough to be secrets. */
export const MAX_LEGACY_TOKEN_LENGTH = 256;
export const MIN_LEGACY_SECRET_LENGTH = 16;
const LEGACY_PREFIX_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$/;
const VISIBLE_ASCII_RE = /^[!-~]+$/;

/** 2-32 letters, digits, `_`, `-` or `.`, starting with a letter or digit, e.g. `sk_live_`. */
export function isValidLegacyPrefix(prefix: string): boolean {
  return typeof prefix === 'string' && LEGACY_PREFIX_RE.test(prefix);
}

/**
 * Whether a legacy prefix could swallow Keyward's own tokens (or the reverse):
 * native tokens must keep their checksum pre-check, so the two never overlap.
 */
export function overlapsNativePrefix(prefix: string, prefixes: TokenPrefixes): boolean {
  return [prefixes.personal, prefixes.client].some((native) => {
    const head = `${native}_`;
    return head.startsWith(prefix) || prefix.startsWith(head);
  });
}

/**
 * The legacy prefix a presented key carries, or null when it is not shaped
 * like a legacy key (no configured prefix, too long, too short after the
 * prefix, or characters outside visible ASCII). The longest prefix wins.
 */
export function legacyPrefixOf(token: string, legacyPrefixes: readonly string[] | undefined): string | null {
  if (!legacyPrefixes || legacyPrefixes.length === 0 || typeof token !== 'string' || token.length > MAX_LEGACY_TOKEN_LENGTH) return null;
  let found: string | null = null;
  for (const prefix of legacyPrefixes) {
    if (token.startsWith(prefix) && (found === null || prefix.length > found.length)) found = prefix;
  }
  if (found === null || token.length - found.length < MIN_LEGACY_SECRET_LENGTH || !VISIBLE_ASCII_RE.test(token)) return null;
  return found;
}

/** The plain SHA-256 (hex) other key services store: how a key imported as a hash is found. */
export function sha256Digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Every digest a presented token may be stored under, for one indexed read:
 * the HMAC under each keyring version, plus for a legacy key its plain
 * SHA-256 (a key imported as a hash and not used yet). Native tokens get the
 * HMACs only.
 */
export function lookupDigests(keyring: Keyring, token: string, legacyPrefixes: readonly string[] | undefined): string[] {
  const digests = candidateDigests(keyring, token).map((candidate) => candidate.digest);
  if (legacyPrefixOf(token, legacyPrefixes) !== null) digests.push(sha256Digest(token));
  return digests;
}

/** The display hint of a legacy key: its prefix and, when the key is known, its last 4 characters. */
export function legacyTokenHint(prefix: string, token?: string): string {
  return `${prefix}…${token === undefined ? '' : token.slice(-4)}`;
}
