import { crc32 } from 'node:zlib';
import { BASE62_ALPHABET, encodeBase62Fixed, randomBase62 } from '../encoding/base62.ts';

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
/** Configured prefixes already found valid: a verification asks again each time, a regex test costs more than the lookup. */
const validPrefixes = new Set<string>();
const MAX_REMEMBERED_PREFIXES = 64;

/** The configured prefix, if valid: checked once, then remembered. */
function isKnownValidPrefix(prefix: string): boolean {
  if (validPrefixes.has(prefix)) return true;
  if (!isValidTokenPrefix(prefix)) return false;
  if (validPrefixes.size < MAX_REMEMBERED_PREFIXES) validPrefixes.add(prefix);
  return true;
}

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

/**
 * Checks shape, prefix and checksum without I/O and without allocating, so
 * typos and garbage never reach the database. It runs before every
 * verification, so it compares character codes instead of slicing strings.
 */
export function isWellFormedToken(token: string, prefixes: TokenPrefixes): boolean {
  return kindOf(token, prefixes) !== null;
}

/** Like {@link isWellFormedToken}, with the token's parts. */
export function parseToken(token: string, prefixes: TokenPrefixes): ParsedToken | null {
  const kind = kindOf(token, prefixes);
  if (kind === null) return null;
  const separator = token.length - TOKEN_TAIL_LENGTH - 1;
  return { kind, prefix: token.slice(0, separator), body: token.slice(separator + 1, separator + 1 + TOKEN_BODY_LENGTH), checksum: token.slice(-TOKEN_CHECKSUM_LENGTH) };
}

// Each ASCII code's base62 digit value, or -1.
const BASE62_VALUE = new Int8Array(128).fill(-1);
for (let digit = 0; digit < BASE62_ALPHABET.length; digit++) BASE62_VALUE[BASE62_ALPHABET.charCodeAt(digit)] = digit;
const UNDERSCORE = 0x5f;

// CRC-32 (the IEEE polynomial, as zlib's crc32), one table lookup per byte.
// The checked part of a token is ASCII by then, so each character code is its
// UTF-8 byte: the sum is computed in the same pass as the base62 check, with no
// substring and no call into zlib (token-format.test.ts checks it against zlib's).
const CRC32_TABLE = new Int32Array(256);
for (let byte = 0; byte < 256; byte++) {
  let crc = byte;
  for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  CRC32_TABLE[byte] = crc;
}

function kindOf(token: string, prefixes: TokenPrefixes): TokenKind | null {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
  // The tail is base62 (no "_"), so the separator sits at a fixed distance from the end.
  const separator = token.length - TOKEN_TAIL_LENGTH - 1;
  if (separator < 1 || token.charCodeAt(separator) !== UNDERSCORE) return null;
  let kind: TokenKind;
  if (separator === prefixes.personal.length && token.startsWith(prefixes.personal)) kind = 'personal';
  else if (separator === prefixes.client.length && token.startsWith(prefixes.client)) kind = 'client';
  else return null;
  // A valid prefix is ASCII, as the "_" after it.
  if (!isKnownValidPrefix(kind === 'personal' ? prefixes.personal : prefixes.client)) return null;
  let crc = -1;
  for (let index = 0; index <= separator; index++) crc = CRC32_TABLE[(crc ^ token.charCodeAt(index)) & 0xff]! ^ (crc >>> 8);
  // The body must be base62; the checksum digits are read as one number and
  // compared with the CRC32 (fixed-width base62 has one spelling per number).
  const checksumStart = token.length - TOKEN_CHECKSUM_LENGTH;
  for (let index = separator + 1; index < checksumStart; index++) {
    const code = token.charCodeAt(index);
    if (code >= 128 || BASE62_VALUE[code]! < 0) return null;
    crc = CRC32_TABLE[(crc ^ code) & 0xff]! ^ (crc >>> 8);
  }
  let checksum = 0;
  for (let index = checksumStart; index < token.length; index++) {
    const code = token.charCodeAt(index);
    const digit = code < 128 ? BASE62_VALUE[code]! : -1;
    if (digit < 0) return null;
    checksum = checksum * 62 + digit;
  }
  return (crc ^ -1) >>> 0 === checksum ? kind : null;
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
