import { crc32 } from 'node:zlib';
import { encodeBase62Fixed, isBase62, randomBase62 } from '../encoding/base62.ts';

export type TokenKind = 'personal' | 'client';

export interface TokenPrefixes {
  personal: string;
  client: string;
}

export interface ParsedToken {
  kind: TokenKind;
  prefix: string;
  body: string;
  checksum: string;
}

export const DEFAULT_TOKEN_PREFIXES: TokenPrefixes = { personal: 'kw_pat', client: 'kw_svc' };

/** 43 base62 characters carry 43 * log2(62) ≈ 256.03 bits. */
export const TOKEN_BODY_LENGTH = 43;
/** 62^6 > 2^32, so every CRC32 fits. */
export const TOKEN_CHECKSUM_LENGTH = 6;
const TOKEN_TAIL_LENGTH = TOKEN_BODY_LENGTH + TOKEN_CHECKSUM_LENGTH;
// Longest valid prefix is 16 + 3 * 17 characters; anything longer is refused before any work.
const MAX_TOKEN_LENGTH = 200;

const PREFIX_RE = /^[a-z][a-z0-9]{0,15}(_[a-z0-9]{1,16}){0,3}$/;

export function isValidTokenPrefix(prefix: string): boolean {
  return typeof prefix === 'string' && PREFIX_RE.test(prefix);
}

function checksumOf(prefixAndBody: string): string {
  return encodeBase62Fixed(crc32(prefixAndBody), TOKEN_CHECKSUM_LENGTH);
}

function assertPrefix(prefix: string): void {
  if (!isValidTokenPrefix(prefix)) {
    throw new TypeError(`Invalid token prefix "${prefix}": use lowercase letters and digits, with up to 3 "_" segments`);
  }
}

/** Generates a fresh secret; the caller shows it once and stores only its HMAC digest. */
export function generateToken(prefix: string): string {
  assertPrefix(prefix);
  const head = `${prefix}_${randomBase62(TOKEN_BODY_LENGTH)}`;
  return head + checksumOf(head);
}

/** Checks shape, prefix and checksum without I/O, so typos and garbage never reach the database. */
export function parseToken(token: string, prefixes: TokenPrefixes): ParsedToken | null {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
  const separator = token.lastIndexOf('_');
  if (separator < 1) return null;
  const prefix = token.slice(0, separator);
  const tail = token.slice(separator + 1);
  if (tail.length !== TOKEN_TAIL_LENGTH || !isBase62(tail)) return null;

  let kind: TokenKind;
  if (prefix === prefixes.personal) kind = 'personal';
  else if (prefix === prefixes.client) kind = 'client';
  else return null;
  if (!isValidTokenPrefix(prefix)) return null;

  const body = tail.slice(0, TOKEN_BODY_LENGTH);
  const checksum = tail.slice(TOKEN_BODY_LENGTH);
  if (checksumOf(`${prefix}_${body}`) !== checksum) return null;
  return { kind, prefix, body, checksum };
}

/** The display hint kept in storage: prefix plus the last 4 characters. */
export function tokenHint(token: string): string {
  const separator = token.lastIndexOf('_');
  const prefix = separator < 0 ? '' : token.slice(0, separator + 1);
  return `${prefix}…${token.slice(-4)}`;
}

/**
 * The published pattern for secret scanners, e.g. for the defaults
 * `\b(?:kw_pat|kw_svc)_[0-9A-Za-z]{49}\b`. Matches still need a checksum check
 * (see findTokens) to rule out look-alikes.
 */
export function tokenPatternSource(prefixes: TokenPrefixes): string {
  const names = [...new Set([prefixes.personal, prefixes.client])];
  for (const name of names) assertPrefix(name);
  // Valid prefixes hold only [a-z0-9_], so they need no escaping.
  const alternatives = names.sort((a, b) => b.length - a.length).join('|');
  return `\\b(?:${alternatives})_[0-9A-Za-z]{${TOKEN_TAIL_LENGTH}}\\b`;
}

/** A fresh global RegExp each call, since global regexes carry `lastIndex` state. */
export function tokenPattern(prefixes: TokenPrefixes): RegExp {
  return new RegExp(tokenPatternSource(prefixes), 'g');
}

/** Every real token in `text` (pattern match and valid checksum), e.g. to scrub logs. */
export function findTokens(text: string, prefixes: TokenPrefixes): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(tokenPattern(prefixes))) {
    if (parseToken(match[0], prefixes)) found.push(match[0]);
  }
  return found;
}
