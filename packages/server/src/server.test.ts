// Start-up as an operator meets it: the keyring against the tokens the
// database holds, the port, the data dir, the first-run link, and replicas
// started together. Each test has its own temp data dir; port 0 picks a free port.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { newKeyringEntry } from '@keyward/core';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config/config.ts';
import { SETUP_EXAMPLE, startServer, type RunningServer } from './server.ts';
import { openDatabase } from './storage/index.ts';
import { TEST_DATABASE_URL_VARIABLE, whileSchemasAreStill } from './storage/test-databases.ts';

const ADMIN = { KEYWARD_ADMIN_EMAIL: 'admin@example.com', KEYWARD_ADMIN_PASSWORD: 'correct horse battery staple' };

let workDir: string;
const running: RunningServer[] = [];

beforeEach(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'keyward-server-'));
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
  rmSync(workDir, { recursive: true, force: true });
});

function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

interface Started {
  server: RunningServer;
  logs: () => string;
  terminal: () => string;
}

async function start(env: Record<string, string> = {}): Promise<Started> {
  const logs = collector();
  const terminal = collector();
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', KEYWARD_CONFIG: '', KEYWARD_DATA_DIR: path.join(workDir, 'data'), ...env }, workDir);
  const server = await startServer(config, { logStream: logs.stream, terminal: terminal.stream });
  running.push(server);
  return { server, logs: logs.text, terminal: terminal.text };
}

async function stop(started: Started): Promise<void> {
  running.splice(running.indexOf(started.server), 1);
  await started.server.close();
}

async function startFails(env: Record<string, string> = {}): Promise<ConfigError> {
  const error = await start(env).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as ConfigError).message;
  expect(message).not.toContain('\n');
  return error as ConfigError;
}

async function createToken(started: Started, name: string): Promise<string> {
  const response = await started.server.app.inject({
    method: 'POST',
    url: '/api/v1/tokens',
    payload: { name, email: ADMIN.KEYWARD_ADMIN_EMAIL, password: ADMIN.KEYWARD_ADMIN_PASSWORD, scopes: ['tokens:read'] },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().token as string;
}

async function statusWith(started: Started, token: string): Promise<number> {
  return (await started.server.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { authorization: `Bearer ${token}` } })).statusCode;
}

const secretsFile = () => path.join(workDir, 'data', 'secrets');

describe('start-up and the keyring', () => {
  it('stops, naming KEYWARD_SECRETS and how to restore or reset, when the generated secret is gone but tokens exist', async () => {
    const first = await start(ADMIN);
    await createToken(first, 'laptop');
    await stop(first);
    rmSync(secretsFile());

    const error = await startFails(ADMIN);
    expect(error.setting).toBe('KEYWARD_SECRETS');
    expect(error.message).toMatch(/is gone.*1 live token.*restore that file from a backup.*KEYWARD_ALLOW_STRANDED_TOKENS=true/);
    // Nothing generated: restoring the file is still possible.
    expect(existsSync(secretsFile())).toBe(false);
  });

  it('starts with a new secret when KEYWARD_ALLOW_STRANDED_TOKENS=true says so, warning with the figures', async () => {
    const first = await start(ADMIN);
    const token = await createToken(first, 'laptop');
    await stop(first);
    rmSync(secretsFile());

    const second = await start({ ...ADMIN, KEYWARD_ALLOW_STRANDED_TOKENS: 'true' });
    expect(existsSync(secretsFile())).toBe(true);
    expect(second.logs()).toMatch(/1 of 1 live tokens are hashed under keyring versions the keyring in force lacks/);
    expect(await statusWith(second, token)).toBe(401);
  });

  it('warns with the figures after a rotation when the rotated KEYWARD_SECRETS is not exported again, and refuses once every token is stranded', async () => {
    const first = await start(ADMIN);
    const used = await createToken(first, 'used');
    const idle = await createToken(first, 'idle');
    await stop(first);

    // README's recipe: a new entry in front of the generated one; use re-hashes under v2.
    const rotated = `${newKeyringEntry('v2')},${readFileSync(secretsFile(), 'utf8').trim()}`;
    const second = await start({ ...ADMIN, KEYWARD_SECRETS: rotated });
    expect(await statusWith(second, used)).toBe(200);
    await stop(second);

    // Restarted without the export: the file's v1 only.
    const third = await start(ADMIN);
    expect(third.logs()).toMatch(/1 of 2 live tokens are hashed under keyring versions the keyring in force lacks \(v2\)/);
    expect(third.logs()).toContain('"missingVersions":{"v2":1}');
    expect(await statusWith(third, used)).toBe(401);
    expect(await statusWith(third, idle)).toBe(200);
    await stop(third);

    const fourth = await start({ ...ADMIN, KEYWARD_SECRETS: rotated });
    expect(await statusWith(fourth, idle)).toBe(200);
    await stop(fourth);

    const error = await startFails(ADMIN);
    expect(error.setting).toBe('KEYWARD_SECRETS');
    expect(error.message).toMatch(/every live token \(2\) is hashed under keyring version v2, which the secrets file .* lacks/);
    expect(error.message).toContain('KEYWARD_ALLOW_STRANDED_TOKENS=true');
  });

  it('starts as before on a database without tokens, whatever the keyring', async () => {
    const first = await start(ADMIN);
    await stop(first);
    rmSync(secretsFile());
    const second = await start(ADMIN);
    expect(second.logs()).toContain('KEYWARD_SECRETS is not set: generated');
  });
});

describe('start-up and its settings', () => {
  let blocker: Server | undefined;
  afterEach(async () => {
    if (blocker) await new Promise<void>((resolve) => blocker?.close(() => resolve()));
    blocker = undefined;
  });

  it('fails with one line naming PORT and HOST when the port is taken, before printing a setup link', async () => {
    const taken = (blocker = createServer());
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    const terminal = collector();
    const config = loadConfig({ HOST: '127.0.0.1', PORT: String(port), KEYWARD_CONFIG: '', KEYWARD_DATA_DIR: path.join(workDir, 'data') }, workDir);
    const error = await startServer(config, { logStream: collector().stream, terminal: terminal.stream }).then(() => null, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`PORT: 127.0.0.1:${port} is already in use by another process; stop it, or choose another PORT (or HOST)`);
    expect(terminal.text()).toBe('');
  });

  it('fails with one line naming KEYWARD_DATA_DIR when it cannot be a directory', async () => {
    const notADirectory = path.join(workDir, 'a-file');
    writeFileSync(notADirectory, 'x');
    const error = await startFails({ KEYWARD_DATA_DIR: path.join(notADirectory, 'data') });
    expect(error.setting).toBe('KEYWARD_DATA_DIR');
    expect(error.message).toMatch(/^KEYWARD_DATA_DIR: cannot keep the database in .*a-file\/data \(.*ENOTDIR.*\); make it a writable directory$/);
  });

  it('prints the setup link and curl command after listening, with the placeholders README uses', async () => {
    const started = await start();
    const url = started.server.url;
    expect(started.terminal()).toContain(`${url}/setup#`);
    expect(started.terminal()).toContain(`curl -X POST ${url}/api/v1/setup`);
    expect(started.terminal()).toContain(`"email":"${SETUP_EXAMPLE.email}","password":"${SETUP_EXAMPLE.password}"`);
    // Following the printed command and then README's next step must sign in with the same credentials.
    const readme = readFileSync(path.join(import.meta.dirname, '../../../README.md'), 'utf8');
    const quickstart = readme.slice(readme.indexOf('### Your first token with curl'), readme.indexOf('## Concepts'));
    expect(quickstart).toContain(`"email":"${SETUP_EXAMPLE.email}","password":"${SETUP_EXAMPLE.password}"`);
    expect(quickstart.match(/"email":"[^"]+","password":"[^"]+"/g)?.every((pair) => pair === `"email":"${SETUP_EXAMPLE.email}","password":"${SETUP_EXAMPLE.password}"`)).toBe(true);
    // The link is for the terminal only.
    expect(started.logs()).not.toContain('/setup#');
  });
});

describe('replicas started together', () => {
  const RACERS = 3;

  async function expectOneOwner(servers: RunningServer[]): Promise<void> {
    expect(servers).toHaveLength(RACERS);
    const [first] = servers;
    const store = first!.app;
    const login = await store.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN.KEYWARD_ADMIN_EMAIL, password: ADMIN.KEYWARD_ADMIN_PASSWORD } });
    expect(login.statusCode, login.body).toBe(200);
    for (const server of servers) expect((await server.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  }

  // On SQLite the racers must be processes (node:sqlite waits for a lock synchronously): see the CLI's tests.
  const databaseUrl = process.env[TEST_DATABASE_URL_VARIABLE];
  it.runIf(databaseUrl)('all start on one empty PostgreSQL schema, migrating once, with exactly one owner and organization', async () => {
    const schema = `kw_test_${randomBytes(6).toString('hex')}`;
    const admin = await openDatabase({ databaseUrl, dataDir: tmpdir() });
    try {
      const url = new URL(databaseUrl as string);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const env = { ...ADMIN, DATABASE_URL: url.href, KEYWARD_SECRETS: newKeyringEntry('v1') };
      // Migrating introspects every schema: none may be dropped by another test file meanwhile.
      const servers = await whileSchemasAreStill(async () => {
        await sql`create schema ${sql.id(schema)}`.execute(admin.db);
        return Promise.all(Array.from({ length: RACERS }, () => start(env).then((started) => started.server)));
      });
      await expectOneOwner(servers);
      const count = async (table: 'users' | 'organizations') =>
        Number((await sql<{ n: number }>`select count(*) as n from ${sql.table(`${schema}.${table}`)}`.execute(admin.db)).rows[0]?.n);
      expect(await count('users')).toBe(1);
      expect(await count('organizations')).toBe(1);
    } finally {
      await Promise.all(running.splice(0).map((server) => server.close()));
      await whileSchemasAreStill(() => sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db));
      await admin.close();
    }
  });
});

describe('the periodic jobs', () => {
  it('run from start-up, each under its own lease, and give their leases up on shutdown', async () => {
    const started = await start(ADMIN);
    const database = await openDatabase({ dataDir: path.join(workDir, 'data') });
    try {
      const names = ['retention-purge', 'token-expired-events', 'token-expiry-warnings', 'unused-token-revocation'];
      const leases = () => database.db.selectFrom('jobLeases').select(['name', 'leaseUntil']).orderBy('name').execute();
      // The first round of each comes a second after start-up.
      for (let waited = 0; (await leases()).length < names.length && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      const held = await leases();
      expect(held.map((lease) => lease.name)).toEqual(names);
      expect(held.every((lease) => new Date(lease.leaseUntil).getTime() > Date.now())).toBe(true);
      await stop(started);
      expect((await leases()).every((lease) => new Date(lease.leaseUntil).getTime() <= Date.now())).toBe(true);
    } finally {
      await database.close();
    }
  });
});
