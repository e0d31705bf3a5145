// Where the HMAC keyring comes from: KEYWARD_SECRETS, or on a first run a
// secret generated once and kept in the data dir with 0600 permissions.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KeyringError, newKeyringEntry, parseKeyring, type Keyring } from '@keyward/core';
import { ConfigError, type KeywardConfig } from './config.ts';

export const SECRETS_FILE = 'secrets';

/** The keyring in force without creating one: KEYWARD_SECRETS, else the data dir's file, else null. */
export function currentKeyring(config: KeywardConfig): Keyring | null {
  if (config.secrets !== null) return parseOrExplain(config.secrets, 'KEYWARD_SECRETS');
  const file = path.join(config.dataDir, SECRETS_FILE);
  return existsSync(file) ? parseOrExplain(readFileSync(file, 'utf8').trim(), file) : null;
}

export function resolveKeyring(config: KeywardConfig, onGenerated: (file: string) => void = () => {}): Keyring {
  if (config.secrets !== null) return parseOrExplain(config.secrets, 'KEYWARD_SECRETS');
  const file = path.join(config.dataDir, SECRETS_FILE);
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    // 'wx' refuses to overwrite: two first starts racing keep the first secret.
    writeFileSync(file, `${newKeyringEntry('v1')}\n`, { mode: 0o600, flag: 'wx' });
    onGenerated(file);
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return parseOrExplain(readFileSync(file, 'utf8').trim(), file);
}

function parseOrExplain(spec: string, setting: string): Keyring {
  try {
    return parseKeyring(spec);
  } catch (error) {
    if (error instanceof KeyringError) throw new ConfigError(setting, error.message);
    throw error;
  }
}
