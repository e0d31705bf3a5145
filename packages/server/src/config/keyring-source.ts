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
  const file = secretsFilePath(config);
  return existsSync(file) ? parseOrExplain(readFileSync(file, 'utf8').trim(), file) : null;
}

/** Where the generated secret is kept when KEYWARD_SECRETS is unset. */
export function secretsFilePath(config: KeywardConfig): string {
  return path.join(config.dataDir, SECRETS_FILE);
}

/**
 * The keyring in force, generating the data dir's secret when there is none.
 * Start-up first checks that no token depends on a secret that went missing
 * (see server.ts); a new secret would silently strand them. A `version`
 * other than v1 keeps a replacement apart from the versions tokens already use.
 */
export function resolveKeyring(config: KeywardConfig, onGenerated: (file: string) => void = () => {}, version = 'v1'): Keyring {
  if (config.secrets !== null) return parseOrExplain(config.secrets, 'KEYWARD_SECRETS');
  const file = secretsFilePath(config);
  try {
    if (!existsSync(file)) {
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      try {
        // 'wx' refuses to overwrite: two first starts racing keep the first secret.
        writeFileSync(file, `${newKeyringEntry(version)}\n`, { mode: 0o600, flag: 'wx' });
        onGenerated(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    return parseOrExplain(readFileSync(file, 'utf8').trim(), file);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError('KEYWARD_DATA_DIR', `cannot keep the generated secret in ${config.dataDir} (${describeFileError(error)}); make it a writable directory, or set KEYWARD_SECRETS`);
  }
}

/** `EACCES: permission denied, open '/x'` → `permission denied`: the setting's line names the path already. */
export function describeFileError(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  const reason = /^[A-Z]+: ([^,]+)/.exec(message ?? '')?.[1];
  return reason ? `${reason}${code ? ` (${code})` : ''}` : (message?.split('\n')[0] ?? String(error));
}

function parseOrExplain(spec: string, setting: string): Keyring {
  try {
    return parseKeyring(spec);
  } catch (error) {
    if (error instanceof KeyringError) throw new ConfigError(setting, error.message);
    throw error;
  }
}
