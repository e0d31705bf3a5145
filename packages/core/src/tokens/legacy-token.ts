// Keys brought from another system (issue 13's import). They keep their own
// format: a configured legacy prefix stands in for Keyward's checksum
// pre-check, and a key imported as a bare SHA-256 hash (as many key services
// store them) is looked up by that digest until its first use re-hashes it
// under the keyring.
import { createHash } from 'node:crypto';
import { candidateDigests, type Keyring } from './keyring.ts';
import { legacyPrefixOf } from './legacy-prefix.ts';

export { MAX_LEGACY_TOKEN_LENGTH, MIN_LEGACY_SECRET_LENGTH, isValidLegacyPrefix, legacyPrefixOf, overlapsNativePrefix } from './legacy-prefix.ts';

/** How a token's digest was made: an HMAC under the keyring, or a plain SHA-256 of an imported key. */
export type TokenHashKind = 'hmac' | 'sha256';

/**
 * The `secretVersion` stored with a SHA-256 digest. Keyring versions are
 * letters and digits only, so this can never name one: the verifier sees "not
 * the current version" and re-hashes the key on its first use.
 */
export const SHA256_SECRET_VERSION = 'sha256-import';

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
