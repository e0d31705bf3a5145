// The commands that run the server on this machine: they load @keyward/server,
// which the remote commands (token, verify) never need.
import { parseArgs } from 'node:util';
import { newKeyringEntry, nextKeyringVersion, bootstrapOwner } from '@keyward/core';
import { SERVER_VERSION, createServiceDeps, currentKeyring, loadConfig, openMigratedDatabase, resolveKeyring, startServer } from '@keyward/server';
import { UsageError } from './usage-error.ts';

export async function serve(): Promise<void> {
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

export async function migrate(): Promise<void> {
  const database = await openMigratedDatabase(loadConfig());
  await database.close();
  console.log(`keyward: the ${database.dialect} database is at the latest migration`);
}

export async function init(args: string[]): Promise<void> {
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

export function secretsNew(args: string[]): void {
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
export function noOptions(args: string[]): void {
  parseArgs({ args, options: {}, strict: true, allowPositionals: false });
}
