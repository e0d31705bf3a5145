// Configuration: environment first (twelve-factor), then the optional config
// file (JSON or YAML) for the scope catalog and policies. Every failure names its setting.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import {
  DEFAULT_TOKEN_PREFIXES,
  DEMO_SCOPES,
  buildScopeCatalog,
  isValidCidr,
  isValidLegacyPrefix,
  isValidTokenPrefix,
  overlapsNativePrefix,
  type ScopeCatalog,
  type TokenPrefixes,
} from '@keyward/core';
import { Compile } from 'typebox/compile';
import { parse as parseYaml } from 'yaml';
import { ConfigFileSchema, type ConfigFile } from './config-file.ts';
import { loadSecretScanningConfig, type SecretScanningConfig } from './scanning-partners.ts';

export class ConfigError extends Error {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`);
    this.setting = setting;
  }
}

export interface RateLimitConfig {
  max: number;
  windowSeconds: number;
}

export interface KeywardConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Unset = SQLite under dataDir. */
  databaseUrl: string | null;
  redisUrl: string | null;
  /** `v2:…,v1:…`; unset = generated once and kept in the data dir. */
  secrets: string | null;
  adminEmail: string | null;
  adminPassword: string | null;
  publicUrl: string;
  logLevel: string;
  /** `pretty` for people reading a terminal, `json` for collectors; null = pretty when stdout is a TTY. */
  logFormat: LogFormat | null;
  /** Prefix of every Redis key and of the event channel, so deployments sharing a Redis stay apart. */
  redisPrefix: string;
  /** Start even when every live token is hashed under a secret the keyring lacks (they all answer 401). */
  allowStrandedTokens: boolean;
  trustedProxies: string[];
  catalog: ScopeCatalog;
  prefixes: TokenPrefixes;
  /**
   * Prefixes of keys imported from another system (`legacyTokenPrefixes` in the
   * config file, or KEYWARD_LEGACY_TOKEN_PREFIXES, comma-separated): such keys
   * skip the checksum pre-check and are looked up by digest.
   */
  legacyTokenPrefixes: string[];
  rateLimits: { passwordFlow: RateLimitConfig; loginPerIp: RateLimitConfig; loginPerAccount: RateLimitConfig };
  bodyLimitBytes: number;
  configFile: string | null;
  verification: VerificationConfig;
  webhooks: WebhookConfig;
  /**
   * KEYWARD_HEAP_COMPACTION (default true): once the process is quiet after its
   * memory grew, compact V8's heap and give the pages back (memory/heap-compactor.ts).
   */
  heapCompaction: boolean;
  /** KEYWARD_VERIFY_FAST_PATH (default true): answer well-formed /verify and /authz requests in front of Fastify (http/verify-fast-path.ts). */
  verifyFastPath: boolean;
  /** Partners allowed to report leaked tokens on the public route (scanning-partners.ts). */
  secretScanning: SecretScanningConfig;
}

/** Outbound webhook deliveries. */
export interface WebhookConfig {
  /**
   * KEYWARD_WEBHOOK_ALLOW_PRIVATE: let endpoints point at loopback, private and
   * link-local addresses. Off by default, so an organization admin cannot make
   * the server call into the deployment's own network (SSRF).
   */
  allowPrivate: boolean;
}

/** The verification path's cache, buffers and failure limit. */
export interface VerificationConfig {
  cacheMax: number;
  cacheTtlMs: number;
  negativeTtlMs: number;
  lastUseIntervalMs: number;
  failuresPerIp: { limit: number; windowSeconds: number };
}

export type LogFormat = 'json' | 'pretty';
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];
export const DEFAULT_REDIS_PREFIX = 'keyward:';

export const EMAIL_PATTERN = /^[^\s@]{1,64}@[^\s@]{1,253}\.[^\s@]{1,63}$/;
const HOSTNAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const checkConfigFile = Compile(ConfigFileSchema);

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = text(env, name)?.toLowerCase();
  if (raw === undefined || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function text(env: NodeJS.ProcessEnv, name: string): string | null {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? null : raw.trim();
}

const DEFAULT_CONFIG_FILES = ['keyward.config.json', 'keyward.config.yaml', 'keyward.config.yml'];

function isYaml(filePath: string): boolean {
  return /\.ya?ml$/i.test(filePath);
}

function readConfigFile(env: NodeJS.ProcessEnv, cwd: string): { file: ConfigFile; path: string | null } {
  const explicit = text(env, 'KEYWARD_CONFIG');
  const filePath = explicit
    ? path.resolve(cwd, explicit)
    : DEFAULT_CONFIG_FILES.map((name) => path.resolve(cwd, name)).find((candidate) => existsSync(candidate));
  if (!filePath || !existsSync(filePath)) {
    if (explicit) throw new ConfigError('KEYWARD_CONFIG', `no file at ${filePath}`);
    return { file: {}, path: null };
  }
  let parsed: unknown;
  const source = readFileSync(filePath, 'utf8');
  try {
    parsed = isYaml(filePath) ? parseYaml(source) : JSON.parse(source);
  } catch (error) {
    throw new ConfigError('KEYWARD_CONFIG', `${filePath} is not valid ${isYaml(filePath) ? 'YAML' : 'JSON'} (${(error as Error).message.split('\n')[0]})`);
  }
  if (!checkConfigFile.Check(parsed)) {
    const first = [...checkConfigFile.Errors(parsed)][0];
    // An unknown field fails its `additionalProperties: false` schema, which the validator words as "schema is false".
    const message = first?.keyword === 'boolean' ? 'is not a known field' : (first?.message ?? 'is not valid');
    throw new ConfigError('KEYWARD_CONFIG', `${filePath}${first?.instancePath ?? ''} ${message}`);
  }
  return { file: parsed, path: filePath };
}

function checkDatabaseUrl(url: string | null): string | null {
  if (url === null) return null;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('DATABASE_URL', 'must be a postgres:// URL (leave it unset for SQLite)');
  return url;
}

/** Replicas on one PostgreSQL must share the keyring; a secret generated per data dir would not be. */
function checkSecretsForReplicas(secrets: string | null, databaseUrl: string | null): string | null {
  if (secrets === null && databaseUrl !== null) {
    throw new ConfigError('KEYWARD_SECRETS', 'is required with DATABASE_URL, so every replica hashes tokens with the same secrets (keyward secrets new prints one)');
  }
  return secrets;
}

function checkRedisUrl(url: string | null): string | null {
  if (url === null) return null;
  if (!/^rediss?:\/\//.test(url) || !URL.canParse(url)) throw new ConfigError('REDIS_URL', 'must be a redis:// or rediss:// URL (leave it unset for in-process limits and events)');
  return url;
}

const MAX_LEGACY_PREFIXES = 20;

/** The environment's list wins over the file's; each prefix is checked, and none may overlap Keyward's own. */
function checkLegacyPrefixes(env: NodeJS.ProcessEnv, fromFile: string[] | undefined, prefixes: TokenPrefixes): string[] {
  const raw = text(env, 'KEYWARD_LEGACY_TOKEN_PREFIXES');
  const setting = raw !== null ? 'KEYWARD_LEGACY_TOKEN_PREFIXES' : 'KEYWARD_CONFIG';
  const where = raw !== null ? 'KEYWARD_LEGACY_TOKEN_PREFIXES' : 'legacyTokenPrefixes';
  const list = raw !== null ? raw.split(',').map((entry) => entry.trim()).filter(Boolean) : (fromFile ?? []);
  if (list.length > MAX_LEGACY_PREFIXES) throw new ConfigError(setting, `${where} lists ${list.length} prefixes; at most ${MAX_LEGACY_PREFIXES}`);
  for (const prefix of list) {
    if (!isValidLegacyPrefix(prefix)) throw new ConfigError(setting, `${where}: "${prefix}" is not a valid prefix (2-32 letters, digits, "_", "-" or ".", starting with a letter or digit)`);
    if (overlapsNativePrefix(prefix, prefixes)) throw new ConfigError(setting, `${where}: "${prefix}" overlaps Keyward's own token prefixes (${prefixes.personal}_, ${prefixes.client}_), whose tokens keep their checksum check`);
  }
  if (new Set(list).size !== list.length) throw new ConfigError(setting, `${where} repeats a prefix`);
  return list;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): KeywardConfig {
  const { file, path: configFile } = readConfigFile(env, cwd);
  let catalog: ScopeCatalog;
  try {
    catalog = buildScopeCatalog({ scopes: file.scopes ?? [...DEMO_SCOPES], presets: file.presets, defaultPreset: file.defaultPreset });
  } catch (error) {
    throw new ConfigError('KEYWARD_CONFIG', `scope catalog: ${(error as Error).message}`);
  }
  const prefixes = { ...DEFAULT_TOKEN_PREFIXES, ...file.tokenPrefixes };
  for (const [kind, prefix] of Object.entries(prefixes)) {
    if (!isValidTokenPrefix(prefix)) throw new ConfigError('KEYWARD_CONFIG', `tokenPrefixes.${kind} "${prefix}" is not a valid prefix`);
  }
  if (prefixes.personal === prefixes.client) throw new ConfigError('KEYWARD_CONFIG', 'tokenPrefixes.personal and tokenPrefixes.client must differ');

  const legacyTokenPrefixes = checkLegacyPrefixes(env, file.legacyTokenPrefixes, prefixes);

  const trustedProxies = (text(env, 'KEYWARD_TRUSTED_PROXIES') ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  for (const proxy of trustedProxies) {
    if (!isValidCidr(proxy)) throw new ConfigError('KEYWARD_TRUSTED_PROXIES', `"${proxy}" is not an IP address or CIDR range`);
  }
  const logLevel = text(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const logFormat = text(env, 'LOG_FORMAT')?.toLowerCase() ?? null;
  if (logFormat !== null && !LOG_FORMATS.includes(logFormat as LogFormat)) throw new ConfigError('LOG_FORMAT', `must be one of ${LOG_FORMATS.join(', ')} (unset = pretty on a terminal, json otherwise)`);
  const redisPrefix = text(env, 'KEYWARD_REDIS_PREFIX') ?? DEFAULT_REDIS_PREFIX;
  if (!/^[!-~]{1,64}$/.test(redisPrefix)) throw new ConfigError('KEYWARD_REDIS_PREFIX', 'must be 1-64 printable characters without spaces, such as "keyward-staging:"');

  const host = text(env, 'HOST') ?? '127.0.0.1';
  // All-digit names like 999.1.1.1 are failed IP addresses, not host names.
  if (!isIP(host) && (!HOSTNAME_PATTERN.test(host) || /^[\d.]+$/.test(host))) throw new ConfigError('HOST', `"${host}" is not an IP address or host name`);
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const publicUrl = (text(env, 'KEYWARD_PUBLIC_URL') ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  if (!URL.canParse(publicUrl)) throw new ConfigError('KEYWARD_PUBLIC_URL', `"${publicUrl}" is not a URL`);

  const adminEmail = text(env, 'KEYWARD_ADMIN_EMAIL');
  // The same shape the sign-in routes accept, or the first owner could never sign in.
  if (adminEmail !== null && !EMAIL_PATTERN.test(adminEmail)) throw new ConfigError('KEYWARD_ADMIN_EMAIL', `"${adminEmail}" is not an email address`);
  // Not trimmed (spaces may be part of a password), but empty means unset, as for every other setting.
  const adminPassword = env.KEYWARD_ADMIN_PASSWORD ? env.KEYWARD_ADMIN_PASSWORD : null;
  if ((adminEmail === null) !== (adminPassword === null)) {
    throw new ConfigError(adminEmail === null ? 'KEYWARD_ADMIN_EMAIL' : 'KEYWARD_ADMIN_PASSWORD', 'set both KEYWARD_ADMIN_EMAIL and KEYWARD_ADMIN_PASSWORD, or neither');
  }
  if (adminPassword !== null && adminPassword.length < 12) throw new ConfigError('KEYWARD_ADMIN_PASSWORD', 'must be at least 12 characters');

  const passwordFlow = file.rateLimits?.passwordFlow ?? { max: 5, windowSeconds: 900 };
  return {
    host,
    port,
    dataDir: path.resolve(cwd, text(env, 'KEYWARD_DATA_DIR') ?? 'data'),
    databaseUrl: checkDatabaseUrl(text(env, 'DATABASE_URL')),
    redisUrl: checkRedisUrl(text(env, 'REDIS_URL')),
    secrets: checkSecretsForReplicas(text(env, 'KEYWARD_SECRETS'), text(env, 'DATABASE_URL')),
    adminEmail,
    adminPassword,
    publicUrl,
    logLevel,
    logFormat: logFormat as LogFormat | null,
    redisPrefix,
    allowStrandedTokens: flag(env, 'KEYWARD_ALLOW_STRANDED_TOKENS'),
    trustedProxies,
    catalog,
    prefixes,
    legacyTokenPrefixes,
    rateLimits: {
      passwordFlow: {
        max: integer(env, 'KEYWARD_PASSWORD_FLOW_MAX', passwordFlow.max, 1, 1_000_000),
        windowSeconds: integer(env, 'KEYWARD_PASSWORD_FLOW_WINDOW_SECONDS', passwordFlow.windowSeconds, 1, 86_400),
      },
      loginPerIp: file.rateLimits?.loginPerIp ?? { max: 20, windowSeconds: 900 },
      loginPerAccount: file.rateLimits?.loginPerAccount ?? { max: 10, windowSeconds: 900 },
    },
    bodyLimitBytes: integer(env, 'KEYWARD_BODY_LIMIT_BYTES', 262_144, 1024, 10_485_760),
    configFile,
    verification: {
      cacheMax: integer(env, 'KEYWARD_CACHE_MAX_TOKENS', 100_000, 1, 10_000_000),
      cacheTtlMs: integer(env, 'KEYWARD_CACHE_TTL_SECONDS', 60, 1, 3600) * 1000,
      negativeTtlMs: integer(env, 'KEYWARD_NEGATIVE_CACHE_TTL_SECONDS', 5, 0, 3600) * 1000,
      lastUseIntervalMs: integer(env, 'KEYWARD_LAST_USED_FLUSH_SECONDS', 60, 1, 3600) * 1000,
      failuresPerIp: {
        limit: integer(env, 'KEYWARD_VERIFY_FAILURES_PER_IP', 100, 1, 1_000_000),
        windowSeconds: integer(env, 'KEYWARD_VERIFY_FAILURES_WINDOW_SECONDS', 60, 1, 86_400),
      },
    },
    webhooks: { allowPrivate: flag(env, 'KEYWARD_WEBHOOK_ALLOW_PRIVATE') },
    heapCompaction: text(env, 'KEYWARD_HEAP_COMPACTION') === null || flag(env, 'KEYWARD_HEAP_COMPACTION'),
    verifyFastPath: text(env, 'KEYWARD_VERIFY_FAST_PATH') === null || flag(env, 'KEYWARD_VERIFY_FAST_PATH'),
    secretScanning: loadSecretScanningConfig(env, file.secretScanning),
  };
}
