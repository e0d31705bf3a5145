// Runs Keyward as a process: migrate, resolve the keyring, bootstrap the
// first owner or print the setup link, listen, and shut down gracefully.
import { randomBytes } from 'node:crypto';
import { bootstrapOwner, type Keyring } from '@keyward/core';
import { buildApp } from './app.ts';
import { ConfigError, type KeywardConfig } from './config/config.ts';
import { resolveKeyring } from './config/keyring-source.ts';
import type { App } from './http/app-types.ts';
import { migrateToLatest, openDatabase, type Database } from './storage/index.ts';

export interface RunningServer {
  app: App;
  url: string;
  /** Stops accepting requests, lets in-flight ones finish, then closes Redis (with the app) and the database. */
  close(): Promise<void>;
}

/** Opens and migrates the database; a failure names the setting behind it (DATABASE_URL or KEYWARD_DATA_DIR). */
export async function openMigratedDatabase(config: KeywardConfig): Promise<Database> {
  const setting = config.databaseUrl ? 'DATABASE_URL' : 'KEYWARD_DATA_DIR';
  const explain = (error: unknown) => new ConfigError(setting, `the database could not be opened and migrated: ${(error as Error).message?.split('\n')[0] ?? String(error)}`);
  let database: Database;
  try {
    database = await openDatabase({ databaseUrl: config.databaseUrl ?? undefined, dataDir: config.dataDir });
  } catch (error) {
    throw explain(error);
  }
  try {
    await migrateToLatest(database);
  } catch (error) {
    await database.close();
    throw explain(error);
  }
  return database;
}

export async function startServer(config: KeywardConfig): Promise<RunningServer> {
  // The keyring first: a bad KEYWARD_SECRETS should stop start-up before anything touches the database.
  let generatedSecretsFile: string | null = null;
  const keyring: Keyring = resolveKeyring(config, (file) => (generatedSecretsFile = file));
  const database = await openMigratedDatabase(config);
  const setupToken = randomBytes(24).toString('base64url');
  const { app, context } = await buildApp({ config, database, keyring, setupToken });
  const log = app.log;
  if (generatedSecretsFile) log.warn({ file: generatedSecretsFile }, 'KEYWARD_SECRETS is not set: generated a token-hashing secret and kept it in the data dir (0600). Back it up; losing it invalidates every token.');

  // On any failure before listening, close what is open: a Redis connection
  // retrying in the background would keep the failed process alive.
  try {
    if ((await context.deps.store.countUsers()) === 0) {
      if (config.adminEmail && config.adminPassword) {
        const created = await bootstrapOwner(context.deps, { email: config.adminEmail, password: config.adminPassword, organizationName: 'Default', organizationSlug: 'default' });
        context.setup.token = null;
        log.info({ email: created.user.email, organization: created.organization.slug }, 'created the first owner from KEYWARD_ADMIN_EMAIL');
      } else {
        const link = `${config.publicUrl}/setup#${setupToken}`;
        // The link itself goes to the terminal only, not into log files.
        log.info('no owner yet: printed a one-time setup link to the terminal');
        process.stdout.write(`\n  Keyward first run: create the first owner at\n  ${link}\n  (or: curl -X POST ${config.publicUrl}/api/v1/setup -H 'content-type: application/json' -d '{"setupToken":"${setupToken}","email":"you@example.com","password":"at least 12 characters","organizationName":"Acme","organizationSlug":"acme"}')\n\n`);
      }
    } else {
      context.setup.token = null;
    }

    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    await database.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  let closing: Promise<void> | null = null;
  return {
    app,
    url,
    close() {
      closing ??= (async () => {
        await app.close();
        await database.close();
      })();
      return closing;
    },
  };
}
