// Webhook signing secrets at rest. Unlike a token, the server must use the
// secret again to sign every delivery, so it cannot be stored as a one-way
// hash; it is sealed with AES-256-GCM under a key derived from the keyring
// (HKDF, so the token-hashing key itself is never used for two purposes).
// The endpoint id is bound in as associated data: a sealed secret copied to
// another endpoint's row does not open.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Keyring, KeyringSecret } from '@keyward/core';
import type { WebhookStore } from '../storage/webhook-rows.ts';

const SECRET_PREFIX = 'whsec_';
const IV_BYTES = 12;
const HKDF_INFO = 'keyward webhook signing secret v1';

export class SealedSecretError extends Error {
  override name = 'SealedSecretError';
}

/** A new signing secret: 32 random bytes, base64url, recognizable by its prefix. */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

function keyFor(secret: KeyringSecret): Buffer {
  return Buffer.from(hkdfSync('sha256', secret.key, Buffer.alloc(0), HKDF_INFO, 32));
}

/** `<keyring version>:<iv>.<ciphertext>.<tag>` under the keyring's current version. */
export function sealSecret(keyring: Keyring, endpointId: string, plaintext: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyFor(keyring.current), iv);
  cipher.setAAD(Buffer.from(endpointId, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${keyring.current.version}:${[iv, ciphertext, cipher.getAuthTag()].map((part) => part.toString('base64url')).join('.')}`;
}

/** Opens a sealed secret; throws SealedSecretError (naming only the version) when the keyring cannot. */
export function openSecret(keyring: Keyring, endpointId: string, sealed: string): string {
  const colon = sealed.indexOf(':');
  const version = sealed.slice(0, colon);
  const secret = keyring.all.find((entry) => entry.version === version);
  if (colon < 0 || !secret) throw new SealedSecretError(`the signing secret is sealed under keyring version "${version}", which KEYWARD_SECRETS no longer holds`);
  const [iv, ciphertext, tag] = sealed.slice(colon + 1).split('.').map((part) => Buffer.from(part, 'base64url'));
  if (!iv || !ciphertext || !tag) throw new SealedSecretError('the stored signing secret is malformed');
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyFor(secret), iv);
    decipher.setAAD(Buffer.from(endpointId, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    throw new SealedSecretError('the stored signing secret does not open under the keyring (altered, or moved from another endpoint)');
  }
}

/**
 * Seals every endpoint secret again under the keyring's current version, so an
 * old version can be dropped from KEYWARD_SECRETS without breaking webhooks.
 * Secrets this keyring cannot open (sealed by a replica with a newer keyring,
 * during a rolling deploy) are left alone. Answers how many were resealed.
 */
export async function resealWebhookSecrets(store: Pick<WebhookStore, 'listSealedSecrets' | 'replaceSealedSecret'>, keyring: Keyring): Promise<number> {
  let resealed = 0;
  for (const { id, secretCiphertext } of await store.listSealedSecrets()) {
    if (secretCiphertext.startsWith(`${keyring.current.version}:`)) continue;
    let plaintext: string;
    try {
      plaintext = openSecret(keyring, id, secretCiphertext);
    } catch {
      continue;
    }
    if (await store.replaceSealedSecret(id, secretCiphertext, sealSecret(keyring, id, plaintext))) resealed++;
  }
  return resealed;
}
