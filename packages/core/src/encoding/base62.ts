import { randomBytes } from 'node:crypto';

export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// 248 = 4 * 62: bytes below it map onto the alphabet evenly, the rest are redrawn.
const UNBIASED_LIMIT = 248;
const BASE62_RE = /^[0-9A-Za-z]+$/;

export function randomBase62(length: number): string {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`length must be a non-negative integer, got ${length}`);
  }
  let out = '';
  while (out.length < length) {
    // Ask for a little extra so one batch almost always suffices despite rejections.
    const bytes = randomBytes(Math.ceil((length - out.length) * 1.1) + 4);
    for (const byte of bytes) {
      if (byte >= UNBIASED_LIMIT) continue;
      out += BASE62_ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Encodes a non-negative integer (e.g. a CRC32) as base62, left-padded with '0' to `width`. */
export function encodeBase62Fixed(value: number, width: number): string {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`value must be a non-negative integer, got ${value}`);
  }
  if (!Number.isSafeInteger(width) || width < 1) {
    throw new RangeError(`width must be a positive integer, got ${width}`);
  }
  let out = '';
  let rest = value;
  do {
    out = BASE62_ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  } while (rest > 0);
  if (out.length > width) throw new RangeError(`${value} does not fit in ${width} base62 characters`);
  return out.padStart(width, '0');
}

/** True for a non-empty string made only of base62 characters. */
export function isBase62(s: string): boolean {
  return typeof s === 'string' && BASE62_RE.test(s);
}
