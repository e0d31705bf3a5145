// Runs Keyward as a process: migrate, resolve the keyring, bootstrap the
// first owner, listen, print the setup link, and shut down gracefully.
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { ConflictError, bootstrapOwner, normalizeEmail, type Keyring } from '@keyward/core';
import { buildApp } from './app.ts';
import { ConfigError, type KeywardConfig } from './config/config.ts';
import { countLiveTokensByVersion, keyringCoverage, type KeyringCoverage } from './config/keyring-coverage.ts';
import { currentKeyring, describeFileError, resolveKeyring, secretsFilePath } from './config/keyring-source.ts';
import type { App, AppContext } from './http/app-types.ts';
import { migrateToLatest, openDatabase, type Database } from './storage/index.ts';
import { WebhookStore } from './storage/webhook-rows.ts';
import { resealWebhookSecrets } from './webhooks/secret-box.ts';

/** How often a stopping server closes the connections that went idle. */
const SHUTDOWN_SWEEP_MS = 100;
/** How long in-flight requests get to finish once the server is told to stop. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningServer {
  app: App;
  url: string;
  /** Stops accepting requests, lets in-flight ones finish, then closes Redis (with the app) and the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where logs go (stdout by default). */
  logStream?: Writable;
  /** Where the first-run setup link is printed (stdout by default); it never goes into the logs. */
  terminal?: Writable;
}

/** The placeholders the first-run curl command shows; README's quickstart uses the same ones. */
export const SETUP_EXAMPLE = { email: 'me@example.com', password: 'a long password 123', organizationName: 'Acme', organizationSlug: 'acme' } as const;

/** Opens and migrates the database; a failure names the setting behind it (DATABASE_URL or KEYWARD_DATA_DIR). */
export async function openMigratedDatabase(config: KeywardConfig): Promise<Database> {
  const setting = config.databaseUrl ? 'DATABASE_URL' : 'KEYWARD_DATA_DIR';
  const explain = (error: unknown) =>
    new ConfigError(
      setting,
      config.databaseUrl
        ? `the database could not be opened and migrated: ${(error as Error).message?.split('\n')[0] ?? String(error)}`
        : `cannot keep the database in ${config.dataDir} (${describeFileError(error)}); make it a writable directory`,
    );
  let database: Database;
  try {
    database = await openDatabase({ databaseUrl: config.databaseUrl ?? undefined, dataDir: config.dataDir });
  } catch (error) {
    throw explain(error);
  }
  try {
    // Replicas started together migrate one after the other.
    await database.capabilities.withStartupLock(database.db, () => migrateToLatest(database));
  } catch (error) {
    await database.close();
    throw explain(error);
  }
  return database;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** `v1`, or one above the highest `vN` the database's tokens use. */
function unusedVersion(liveByVersion: Map<string, number>): string {
  const numbers = [...liveByVersion.keys()].map((version) => /^v(\d{1,6})$/i.exec(version)?.[1]).filter((n) => n !== undefined).map(Number);
  return `v${numbers.length > 0 ? Math.max(...numbers) + 1 : 1}`;
}

/**
 * The keyring to run with, refusing one that would silently strand every
 * live token: a generated secret that went missing, or a rotated keyring that
 * was not exported again after a restart.
 */
async function keyringForDatabase(config: KeywardConfig, database: Database, onGenerated: (file: string) => void): Promise<{ keyring: Keyring; coverage: KeyringCoverage }> {
  // Parsed before the database was opened, so a bad KEYWARD_SECRETS stopped start-up first.
  const existing = currentKeyring(config);
  const liveByVersion = await countLiveTokensByVersion(database, new Date());
  const liveTokens = [...liveByVersion.values()].reduce((sum, count) => sum + count, 0);
  const file = secretsFilePath(config);
  if (existing === null && liveTokens > 0 && !config.allowStrandedTokens) {
    throw new ConfigError(
      'KEYWARD_SECRETS',
      `is unset and the generated secret ${file} is gone, but the database holds ${plural(liveTokens, 'live token')} hashed with it: restore that file from a backup (or set KEYWARD_SECRETS to the keyring they were hashed under); to invalidate them all and start with a new secret, set KEYWARD_ALLOW_STRANDED_TOKENS=true`,
    );
  }
  // A replacement secret gets a version no token uses, so the lost one's tokens count as stranded rather than look covered.
  const keyring = existing ?? resolveKeyring(config, onGenerated, unusedVersion(liveByVersion));
  const coverage = keyringCoverage(keyring, liveByVersion);
  if (coverage.liveTokens > 0 && coverage.strandedTokens === coverage.liveTokens && !config.allowStrandedTokens) {
    const versions = Object.keys(coverage.missingVersions).join(', ');
    const source = config.secrets !== null ? 'KEYWARD_SECRETS' : `the secrets file ${file} (KEYWARD_SECRETS is unset)`;
    throw new ConfigError(
      'KEYWARD_SECRETS',
      `every live token (${coverage.liveTokens}) is hashed under keyring version ${versions}, which ${source} lacks, so none would verify: set KEYWARD_SECRETS to a keyring that includes ${versions} (after a secret rotation, keep exporting the rotated KEYWARD_SECRETS), or set KEYWARD_ALLOW_STRANDED_TOKENS=true to start anyway`,
    );
  }
  return { keyring, coverage };
}

/**
 * The first owner from KEYWARD_ADMIN_EMAIL, once. Replicas started together
 * take turns (the start-up lock), and one that still meets an owner created
 * by another carries on when that owner is the configured one.
 */
async function bootstrapFromEnvironment(config: KeywardConfig, database: Database, context: AppContext, log: App['log']): Promise<'created' | 'exists' | 'none'> {
  const store = context.deps.store;
  return database.capabilities.withStartupLock(database.db, async () => {
    if ((await store.countUsers()) > 0) return 'exists';
    if (!config.adminEmail || !config.adminPassword) return 'none';
    try {
      const created = await bootstrapOwner(context.deps, { email: config.adminEmail, password: config.adminPassword, organizationName: 'Default', organizationSlug: 'default' });
      log.info({ email: created.user.email, organization: created.organization.slug }, 'created the first owner from KEYWARD_ADMIN_EMAIL');
      return 'created';
    } catch (error) {
      const isRace = error instanceof ConflictError || database.capabilities.isUniqueViolation(error);
      if (!isRace || !(await store.findUserByEmail(normalizeEmail(config.adminEmail)))) throw error;
      log.info({ email: config.adminEmail }, 'another replica created the first owner from KEYWARD_ADMIN_EMAIL first');
      return 'exists';
    }
  });
}

/** A failed listen as one line naming the setting to change. */
function explainListenError(error: unknown, config: KeywardConfig): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const where = `${config.host}:${config.port}`;
  if (code === 'EADDRINUSE') return new ConfigError('PORT', `${where} is already in use by another process; stop it, or choose another PORT (or HOST)`);
  if (code === 'EACCES') return new ConfigError('PORT', `this process may not listen on ${where}; choose a PORT above 1023`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new ConfigError('HOST', `${config.host} is not an address of this machine, so nothing can listen on ${where}`);
  return error;
}

export async function startServer(config: KeywardConfig, options: StartOptions = {}): Promise<RunningServer> {
  // The keyring first: a bad KEYWARD_SECRETS should stop start-up before anything touches the database.
  currentKeyring(config);
  const database = await openMigratedDatabase(config);
  let app: App | undefined;
  // On any failure before listening, close what is open: a Redis connection
  // retrying in the background would keep the failed process alive.
  try {
    let generatedSecretsFile: string | null = null;
    const { keyring, coverage } = await keyringForDatabase(config, database, (file) => (generatedSecretsFile = file));
    const setupToken = randomBytes(24).toString('base64url');
    const built = await buildApp({ config, database, keyring, setupToken, logStream: options.logStream });
    app = built.app;
    const { context } = built;
    const log = app.log;
    if (generatedSecretsFile) log.warn({ file: generatedSecretsFile }, 'KEYWARD_SECRETS is not set: generated a token-hashing secret and kept it in the data dir (0600). Back it up; losing it invalidates every token.');
    if (coverage.strandedTokens > 0) {
      log.warn(
        { strandedTokens: coverage.strandedTokens, liveTokens: coverage.liveTokens, missingVersions: coverage.missingVersions },
        `${coverage.strandedTokens} of ${coverage.liveTokens} live tokens are hashed under keyring versions the keyring in force lacks (${Object.keys(coverage.missingVersions).join(', ')}); they answer 401 until KEYWARD_SECRETS includes those versions again`,
      );
    }

    const resealed = await resealWebhookSecrets(new WebhookStore(database.db, database.capabilities.readTimestamp), keyring);
    if (resealed > 0) log.info({ resealed, version: keyring.current.version }, 'sealed webhook signing secrets under the current keyring version');

    const bootstrap = await bootstrapFromEnvironment(config, database, context, log);
    if (bootstrap !== 'none') context.setup.token = null;

    // Listen before printing anything that points here: with the port taken, a
    // setup link would lead to whatever else is listening.
    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (error) {
      throw explainListenError(error, config);
    }
    const url = listeningUrl(app, config);
    // Every replica sends webhooks; the leases in the delivery rows keep them from sending one twice at once.
    context.webhooks.start();
    // The periodic jobs run on every replica; each takes its lease first, so one at a time does the work.
    context.expiryWarnings.start();
    context.expiredTokens.start();
    context.unusedTokens.start();
    context.retention.start();
    if (config.heapCompaction) context.heapCompactor.start();
    if (bootstrap === 'none') {
      // A configured port of 0 means "any": the link points at the one chosen.
      const publicUrl = config.port === 0 ? url : config.publicUrl;
      // The link itself goes to the terminal only, not into log files.
      log.info('no owner yet: printed a one-time setup link to the terminal');
      const body = JSON.stringify({ setupToken, ...SETUP_EXAMPLE });
      (options.terminal ?? process.stdout).write(`\n  Keyward first run: create the first owner at\n  ${publicUrl}/setup#${setupToken}\n  (or: curl -X POST ${publicUrl}/api/v1/setup -H 'content-type: application/json' -d '${body}')\n\n`);
    }
    let closing: Promise<void> | null = null;
    const running = app;
    return {
      app: running,
      url,
      close() {
        closing ??= (async () => {
          // Node's server.close() ends only the connections idle at that instant. A
          // keep-alive connection whose request was still in flight stays open after
          // its answer, until the client lets go (Fastify's keep-alive timeout is 72 s),
          // and the process with it. So idle ones are swept until the server is
          // closed, and whatever is left after the grace period is cut.
          const sweep = setInterval(() => running.server.closeIdleConnections(), SHUTDOWN_SWEEP_MS);
          const deadline = setTimeout(() => running.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
          try {
            await running.close();
          } finally {
            clearInterval(sweep);
            clearTimeout(deadline);
          }
          await database.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await app?.close();
    await database.close();
    throw error;
  }
}

function listeningUrl(app: App, config: KeywardConfig): string {
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
}
