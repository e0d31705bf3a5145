// Secret-scanning partners (code hosts, CI log scanners) that may report leaked
// tokens without a Keyward token: each has a name and one or two shared
// secrets (two while a secret is being replaced). From the config file's
// `secretScanning.partners`, and from KEYWARD_SECRET_SCANNING_PARTNERS
// ("name:secret[:previous secret]", comma-separated) so secrets can stay out
// of files. Errors name the partner and the setting, never a secret.
import type { ConfigFile } from './config-file.ts';
import { ConfigError, type RateLimitConfig } from './config.ts';

export interface ScanningPartner {
  name: string;
  /** The current secret first; a second one is accepted too while partners move to the first. */
  secrets: string[];
}

export interface SecretScanningConfig {
  partners: ScanningPartner[];
  /** How far a report's signed timestamp may be from now, either way: older reports are replays. */
  toleranceSeconds: number;
  rateLimits: { perPartner: RateLimitConfig; perIp: RateLimitConfig };
}

export const PARTNERS_ENV = 'KEYWARD_SECRET_SCANNING_PARTNERS';
const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Long enough to be unguessable; characters that survive headers, env files and shells. */
const SECRET_PATTERN = /^[A-Za-z0-9_\-+/=.]{32,512}$/;
const MAX_SECRETS = 2;

function checkPartner(setting: string, name: string, secrets: readonly string[]): ScanningPartner {
  // Not repeated: a secret pasted where the name goes would end up in the message.
  if (!NAME_PATTERN.test(name)) throw new ConfigError(setting, 'each partner needs a name of 1-63 lowercase letters, digits and "-", before its secrets ("name:secret")');
  // Without a secret after it, the "name" may be a secret pasted alone: not repeated either.
  if (secrets.length === 0) throw new ConfigError(setting, 'each partner needs a secret after its name ("name:secret")');
  if (secrets.length > MAX_SECRETS) throw new ConfigError(setting, `partner "${name}" needs one secret, or two while replacing one`);
  for (const [index, secret] of secrets.entries()) {
    // Which secret, by position: never its value.
    if (!SECRET_PATTERN.test(secret)) throw new ConfigError(setting, `partner "${name}" secret ${index + 1} must be 32-512 characters of A-Z a-z 0-9 _ - + / = .`);
  }
  if (new Set(secrets).size !== secrets.length) throw new ConfigError(setting, `partner "${name}" lists the same secret twice`);
  return { name, secrets: [...secrets] };
}

function partnersFromEnv(raw: string | undefined): ScanningPartner[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name = '', ...secrets] = entry.split(':');
      return checkPartner(PARTNERS_ENV, name, secrets);
    });
}

export function loadSecretScanningConfig(env: NodeJS.ProcessEnv, file: ConfigFile['secretScanning']): SecretScanningConfig {
  const fromFile = (file?.partners ?? []).map((partner) => checkPartner('KEYWARD_CONFIG secretScanning.partners', partner.name, partner.secrets));
  const partners = [...fromFile, ...partnersFromEnv(env[PARTNERS_ENV])];
  const seen = new Set<string>();
  for (const partner of partners) {
    if (seen.has(partner.name)) throw new ConfigError(PARTNERS_ENV, `partner "${partner.name}" is configured twice (config file and environment together count)`);
    seen.add(partner.name);
  }
  return {
    partners,
    toleranceSeconds: file?.toleranceSeconds ?? 300,
    rateLimits: {
      perPartner: file?.rateLimits?.perPartner ?? { max: 600, windowSeconds: 60 },
      perIp: file?.rateLimits?.perIp ?? { max: 120, windowSeconds: 60 },
    },
  };
}
