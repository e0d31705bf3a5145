import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

export interface KeyringSecret {
  version: string;
  /** A KeyObject made once: building one per HMAC costs more than the HMAC itself. */
  key: KeyObject;
}

export interface Keyring {
  /** Hashes new tokens; always `all[0]`. */
  current: KeyringSecret;
  /** Every accepted version, current first. */
  all: readonly KeyringSecret[];
}

export interface TokenDigest {
  version: string;
  digest: string;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

const VERSION_RE = /^[A-Za-z0-9]{1,16}$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]+={0,2}$/;
const MIN_KEY_BYTES = 32;

function secretOf(version: string, key: Buffer): KeyringSecret {
  const secret = { version } as KeyringSecret;
  // Non-enumerable, so a keyring that ends up in a logged or serialized config stays secret.
  Object.defineProperty(secret, 'key', { value: createSecretKey(key), enumerable: false });
  return Object.freeze(secret);
}

/**
 * Parses a keyring spec such as `KEYWARD_SECRETS`.
 * @example parseKeyring('v2:<base64url>,v1:<base64url>') // current = v2, v1 still verifies
 */
export function parseKeyring(spec: string): Keyring {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new KeyringError('Keyring is empty: expected "v1:<base64url key>" entries separated by commas');
  }
  const all: KeyringSecret[] = [];
  const seen = new Set<string>();
  spec.split(',').forEach((rawEntry, index) => {
    const position = `Keyring entry ${index + 1}`;
    // Messages name the position and, once validated, the version, never the key material.
    const entry = rawEntry.trim();
    if (entry === '') throw new KeyringError(`${position} is empty`);
    const colon = entry.indexOf(':');
    if (colon < 0) throw new KeyringError(`${position} must look like "<version>:<base64url key>"`);
    const version = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (!VERSION_RE.test(version)) {
      throw new KeyringError(`${position} has an invalid version label: use 1-16 letters or digits`);
    }
    if (seen.has(version.toLowerCase())) {
      throw new KeyringError(`${position} repeats version "${version}"`);
    }
    if (!BASE64URL_RE.test(encoded)) {
      throw new KeyringError(`${position} (version "${version}") key is not base64url`);
    }
    const key = Buffer.from(encoded, 'base64url');
    if (key.length < MIN_KEY_BYTES) {
      throw new KeyringError(
        `${position} (version "${version}") key is ${key.length} bytes; at least ${MIN_KEY_BYTES} are required`,
      );
    }
    seen.add(version.toLowerCase());
    all.push(secretOf(version, key));
  });
  return Object.freeze({ current: all[0]!, all: Object.freeze(all) });
}

/** A new keyring entry to prepend to the spec when rotating the secret. */
export function newKeyringEntry(version: string): string {
  if (!VERSION_RE.test(version)) throw new KeyringError('Version label must be 1-16 letters or digits');
  return `${version}:${randomBytes(MIN_KEY_BYTES).toString('base64url')}`;
}

/** `v<highest numbered version + 1>`, e.g. `v3` after `v2,v1`; `v1` when no label is numbered. */
export function nextKeyringVersion(keyring: Keyring): string {
  let highest = 0;
  for (const { version } of keyring.all) {
    const match = /^v(\d+)$/i.exec(version);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  return `v${highest + 1}`;
}

function digestUnder(secret: KeyringSecret, token: string): TokenDigest {
  return { version: secret.version, digest: createHmac('sha256', secret.key).update(token, 'utf8').digest('hex') };
}

/** The digest stored for a new or rotated token. */
export function hashToken(keyring: Keyring, token: string): TokenDigest {
  return digestUnder(keyring.current, token);
}

/** One digest per accepted version, current first, for a single `where digest in (...)` lookup. */
export function candidateDigests(keyring: Keyring, token: string): TokenDigest[] {
  return keyring.all.map((secret) => digestUnder(secret, token));
}

/** Constant-time comparison; the length of a digest is not secret. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
