// Whether a presented string is shaped like a key imported from another
// system: no I/O and no crypto, so the SDK can pre-check keys with it too.
import type { TokenPrefixes } from './token-format.ts';

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

