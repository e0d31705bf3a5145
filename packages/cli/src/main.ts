#!/usr/bin/env node
// keyward: a thin shell over @keyward/server. Each command parses its flags,
// calls the server package, and exits non-zero with one line on error.
import { parseArgs } from 'node:util';
import { KeywardError, KeyringError, newKeyringEntry, nextKeyringVersion, bootstrapOwner } from '@keyward/core';
import { ConfigError, SERVER_VERSION, createServiceDeps, currentKeyring, loadConfig, openMigratedDatabase, resolveKeyring, startServer } from '@keyward/server';

const USAGE = `keyward ${SERVER_VERSION}: scoped, revocable API tokens

Usage: keyward <command> [options]

Commands:
  serve                 start the server (migrates the database first)
  migrate               bring the database schema to the latest version
  init                  create the first organization and its owner
      --email <email>         owner email (required)
      --password <password>   owner password, 12+ characters (or KEYWARD_ADMIN_PASSWORD)
      --org-name <name>       organization name (default "Default")
      --org-slug <slug>       organization slug (default "default")
  secrets new           print a fresh keyring entry for KEYWARD_SECRETS
      --version <label>       version label (default: one above the newest in KEYWARD_SECRETS, else v1)

Configuration comes from the environment (HOST, PORT, KEYWARD_DATA_DIR, DATABASE_URL,
KEYWARD_SECRETS, ...) and the optional keyward.config.json; see the README.

Options:
  -h, --help            show this help
  -v, --version         print the version
`;

class UsageError extends Error {}

async function serve(): Promise<void> {
  const server = await startServer(loadConfig());
  server.app.log.info(`Keyward ${SERVER_VERSION} listening on ${server.url}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`keyward: shutdown failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function migrate(): Promise<void> {
  const database = await openMigratedDatabase(loadConfig());
  await database.close();
  console.log(`keyward: the ${database.dialect} database is at the latest migration`);
}

async function init(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { email: { type: 'string' }, password: { type: 'string' }, 'org-name': { type: 'string' }, 'org-slug': { type: 'string' } },
    strict: true,
  });
  const password = values.password ?? process.env.KEYWARD_ADMIN_PASSWORD;
  if (!values.email) throw new UsageError('init needs --email');
  if (!password || password.length < 12) throw new UsageError('init needs --password (or KEYWARD_ADMIN_PASSWORD) of at least 12 characters');
  const slug = values['org-slug'] ?? 'default';
  if (!/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/.test(slug)) throw new UsageError('--org-slug must be lowercase letters, digits and hyphens');
  const config = loadConfig();
  const database = await openMigratedDatabase(config);
  try {
    const deps = createServiceDeps({ config, database, keyring: resolveKeyring(config) });
    const created = await bootstrapOwner(deps, { email: values.email, password, organizationName: values['org-name'] ?? 'Default', organizationSlug: slug });
    console.log(`keyward: created organization "${created.organization.slug}" (${created.organization.id}) owned by ${created.user.email}`);
  } finally {
    await database.close();
  }
}

function secretsNew(args: string[]): void {
  const { values } = parseArgs({ args, options: { version: { type: 'string' } }, strict: true });
  // The keyring in force: KEYWARD_SECRETS, or the secret generated into the data dir on first start.
  const current = currentKeyring(loadConfig());
  const version = values.version ?? (current ? nextKeyringVersion(current) : 'v1');
  if (!/^[A-Za-z0-9]{1,16}$/.test(version)) throw new UsageError('--version must be 1-16 letters or digits');
  if (current?.all.some((secret) => secret.version.toLowerCase() === version.toLowerCase())) throw new UsageError(`version ${version} is already in the keyring`);
  console.log(newKeyringEntry(version));
  if (process.stdout.isTTY) {
    console.error('Set KEYWARD_SECRETS=<this entry>,<the current entries> (from KEYWARD_SECRETS, or the secrets file in the data dir); drop an old entry only to invalidate the tokens hashed under it.');
  }
}

/** Commands configured only by the environment still refuse stray arguments, so a typo is not ignored. */
function noOptions(args: string[]): void {
  parseArgs({ args, options: {}, strict: true, allowPositionals: false });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command === '-v' || command === '--version') {
    console.log(SERVER_VERSION);
    return 0;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  switch (command) {
    case 'serve':
      noOptions(rest);
      await serve();
      return -1;
    case 'migrate':
      noOptions(rest);
      await migrate();
      return 0;
    case 'init':
      await init(rest);
      return 0;
    case 'secrets':
      if (rest[0] !== 'new') throw new UsageError(`unknown secrets command "${rest[0] ?? ''}"; try "keyward secrets new"`);
      secretsNew(rest.slice(1));
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"; run "keyward --help"`);
  }
}

// A bad or unknown option is a usage mistake like an unknown command: exit 2, not 1.
function isUsageError(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'));
}

function oneLine(error: unknown): string {
  if (error instanceof ConfigError || error instanceof UsageError || error instanceof KeyringError || error instanceof KeywardError) return error.message;
  const code = (error as { code?: string }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return (error as Error).message.split('\n')[0] ?? 'bad option';
  return (error as Error)?.message?.split('\n')[0] ?? String(error);
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`keyward: ${oneLine(error)}`);
      process.exitCode = isUsageError(error) ? 2 : 1;
    },
  );
}
