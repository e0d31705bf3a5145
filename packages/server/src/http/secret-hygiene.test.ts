// The plaintext of a token leaves the server exactly once, in the create or
// rotate answer: never in another answer, a log line or the database files.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { newKeyringEntry, parseKeyring } from '@keyward/core';
import { sql } from 'kysely';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../app.ts';
import { REDACTED } from '../logging/logger.ts';
import { SQLITE_FILE_NAME, migrateToLatest, openDatabase, type Database } from '../storage/index.ts';
import { describeEachDialect } from '../storage/test-databases.ts';
import { bearer, createTestApp, json, passwordToken, type TestApp } from '../testing/test-app.ts';
import type { App, AppContext } from './app-types.ts';

const MANAGEMENT_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'members:manage', 'audit:read'];

/** The secret and its random body alone, in case something stored or logged it without the prefix. */
function secretForms(plaintext: string): string[] {
  return [plaintext, plaintext.slice(plaintext.lastIndexOf('_') + 1)];
}

function expectNoSecret(text: string | Buffer, plaintexts: readonly string[]): void {
  for (const plaintext of plaintexts) {
    for (const form of secretForms(plaintext)) expect(text.includes(form), `found ${plaintext.slice(0, 10)}…`).toBe(false);
  }
}

interface Issued {
  token: string;
  id: string;
}

/** Issues secrets every way a user can: password flow, bearer token, rotation. */
async function issueSecrets(t: TestApp): Promise<{ manager: Issued; byPassword: Issued; byBearer: Issued; rotated: Issued; all: Issued[] }> {
  const manager = await passwordToken(t, { name: 'manager', scopes: MANAGEMENT_SCOPES });
  const byPassword = await passwordToken(t, { name: 'ci', scopes: ['scans:read'] });
  const created = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(manager.token), payload: { name: 'reader', scopes: ['tokens:read'] } });
  expect(created.statusCode).toBe(201);
  const byBearer = { token: json(created).token as string, id: json(created).id as string };
  const response = await t.app.inject({ method: 'POST', url: `/api/v1/tokens/${byBearer.id}/rotate`, headers: bearer(manager.token), payload: { gracePeriodSeconds: 60 } });
  expect(response.statusCode).toBe(201);
  const rotated = { token: json(response).token as string, id: json(response).id as string };
  return { manager, byPassword, byBearer, rotated, all: [manager, byPassword, byBearer, rotated] };
}

describeEachDialect('token secrets', (open) => {
  let t: TestApp;

  describe('HTTP answers', () => {
    beforeEach(async () => {
      t = await createTestApp(open);
    });
    afterEach(async () => {
      await t.close();
    });

    it('carry the plaintext only in the create and rotate answers', async () => {
      const { manager, byPassword, all: issued } = await issueSecrets(t);
      const plaintexts = issued.map((entry) => entry.token);
      const digests = await Promise.all(issued.map(async (entry) => (await t.context.deps.store.findToken(t.organizationId, entry.id))?.digest ?? 'missing'));

      const answers: LightMyRequestResponse[] = [
        await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(manager.token) }),
        await t.app.inject({ method: 'GET', url: '/api/v1/tokens?all=true', headers: bearer(manager.token) }),
        await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(manager.token) }),
        await t.app.inject({ method: 'GET', url: '/api/v1/audit?limit=100', headers: bearer(manager.token) }),
        await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${byPassword.id}`, headers: bearer(manager.token), payload: { name: 'ci renamed' } }),
      ];
      for (const entry of issued) {
        answers.push(await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${entry.id}`, headers: bearer(manager.token) }));
        answers.push(await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(entry.token) }));
      }
      for (const answer of answers) {
        expect(answer.statusCode).toBe(200);
        expectNoSecret(answer.body, plaintexts);
        for (const digest of digests) expect(answer.body).not.toContain(digest);
        expect(answer.body).not.toMatch(/"(token|digest|secretVersion)":/);
      }
      const listed = json(answers[1] as LightMyRequestResponse);
      expect(listed.items.map((item: { id: string }) => item.id)).toEqual(expect.arrayContaining(issued.map((entry) => entry.id)));
    });
  });

  describe('logs', () => {
    beforeEach(async () => {
      t = await createTestApp(open);
    });
    afterEach(async () => {
      await t.close();
    });

    it('never carry a plaintext, not even from a query string or a malformed Authorization header', async () => {
      const { manager, byPassword: leaked, all } = await issueSecrets(t);
      const plaintexts = all.map((entry) => entry.token);

      const misuses = [
        await t.app.inject({ method: 'GET', url: `/api/v1/tokens?access_token=${leaked.token}` }),
        await t.app.inject({ method: 'GET', url: `/api/v1/tokens/current?authorization=Bearer%20${leaked.token}` }),
        await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${leaked.token}`, headers: bearer(manager.token) }),
        await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: { authorization: `Token ${leaked.token}` } }),
        await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: { authorization: `Bearer ${leaked.token} ${leaked.token}` } }),
        await t.app.inject({ method: 'POST', url: '/api/v1/tokens/revoke-leaked', headers: bearer(manager.token), payload: { tokens: [leaked.token] } }),
        await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(leaked.token) }),
      ];
      expect(misuses.map((response) => response.statusCode)).toEqual([401, 401, 400, 401, 401, 202, 401]);

      const logs = t.logs.join('');
      // Every request is logged at info, so the URLs above did reach the log.
      expect(t.logs.length).toBeGreaterThan(20);
      expect(logs).toContain('access_token=');
      expect(logs).toContain(`access_token=${REDACTED}`);
      expect(logs).toContain(`Bearer%20${REDACTED}`);
      expect(logs).toContain(`/api/v1/tokens/${REDACTED}`);
      expectNoSecret(logs, plaintexts);
    });
  });

  describe('the keyring', () => {
    let apps: App[] = [];
    const v1 = newKeyringEntry('v1');
    const v2 = newKeyringEntry('v2');

    beforeEach(async () => {
      t = await createTestApp(open, { keyring: parseKeyring(v1) });
      apps = [];
    });
    afterEach(async () => {
      for (const app of apps) await app.close();
      await t.close();
    });

    /** Stops the running app and starts another on the same database, as a restart with a new KEYWARD_SECRETS would. */
    async function restartWith(spec: string, previous: App): Promise<{ app: App; context: AppContext; logs: string[] }> {
      await previous.close();
      const logs: string[] = [];
      const logStream = new Writable({
        write(chunk, _encoding, done) {
          logs.push(String(chunk));
          done();
        },
      });
      const { app, context } = await buildApp({ config: t.config, database: t.database, keyring: parseKeyring(spec), now: t.clock.now, logStream });
      await app.ready();
      apps.push(app);
      return { app, context, logs };
    }

    function current(app: App, token: string): Promise<LightMyRequestResponse> {
      return app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) });
    }

    async function storedVersion(context: AppContext, id: string): Promise<{ secretVersion: string; digest: string } | undefined> {
      const token = await context.deps.store.findToken(t.organizationId, id);
      return token ? { secretVersion: token.secretVersion, digest: token.digest } : undefined;
    }

    it('keeps a v1 token working after a restart with v2,v1 and re-hashes it under v2', async () => {
      const created = await passwordToken(t, { scopes: ['scans:read'] });
      const before = await storedVersion(t.context, created.id);
      expect(before?.secretVersion).toBe('v1');

      const restarted = await restartWith(`${v2},${v1}`, t.app);
      const response = await current(restarted.app, created.token);
      expect(response.statusCode).toBe(200);
      expect(json(response).id).toBe(created.id);

      const after = await storedVersion(restarted.context, created.id);
      expect(after?.secretVersion).toBe('v2');
      expect(after?.digest).not.toBe(before?.digest);
      expect((await current(restarted.app, created.token)).statusCode).toBe(200);
      expectNoSecret(restarted.logs.join(''), [created.token]);
    });

    it('issues new tokens under the first version of the keyring', async () => {
      const restarted = await restartWith(`${v2},${v1}`, t.app);
      const created = await passwordToken({ ...t, app: restarted.app, context: restarted.context }, { scopes: ['scans:read'] });
      expect((await storedVersion(restarted.context, created.id))?.secretVersion).toBe('v2');
    });

    it('refuses a token still hashed only under a version that was dropped', async () => {
      const used = await passwordToken(t, { scopes: ['scans:read'] });
      const unused = await passwordToken(t, { scopes: ['scans:read'] });

      const both = await restartWith(`${v2},${v1}`, t.app);
      expect((await current(both.app, used.token)).statusCode).toBe(200);
      expect((await storedVersion(both.context, unused.id))?.secretVersion).toBe('v1');

      const onlyV2 = await restartWith(v2, both.app);
      expect((await current(onlyV2.app, used.token)).statusCode).toBe(200);
      const refused = await current(onlyV2.app, unused.token);
      expect(refused.statusCode).toBe(401);
      expect(json(refused).code).toBe('unauthenticated');
      expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
    });
  });
});

describe('the SQLite data directory', () => {
  let dataDir: string;
  let database: Database;
  let t: TestApp;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'keyward-hygiene-'));
    database = await openDatabase({ dataDir });
    await migrateToLatest(database);
    t = await createTestApp(async () => database);
  });
  afterEach(async () => {
    await t.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function filesOf(): Promise<Map<string, Buffer>> {
    const files = new Map<string, Buffer>();
    for (const name of await readdir(dataDir)) files.set(name, await readFile(join(dataDir, name)));
    return files;
  }

  it('holds no plaintext in the database file, its WAL or its shared memory, before and after a checkpoint', async () => {
    const { manager, byPassword, byBearer, rotated, all } = await issueSecrets(t);
    const plaintexts = all.map((entry) => entry.token);
    // Use, report and refuse some of them, so the write paths of verification run too.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(byBearer.token) })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/tokens/revoke-leaked', headers: bearer(manager.token), payload: { tokens: [byPassword.token] } })).statusCode).toBe(202);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(byPassword.token) })).statusCode).toBe(401);
    const newest = rotated.id;

    const beforeCheckpoint = await filesOf();
    expect([...beforeCheckpoint.keys()]).toEqual(expect.arrayContaining([SQLITE_FILE_NAME, `${SQLITE_FILE_NAME}-wal`, `${SQLITE_FILE_NAME}-shm`]));
    // The scan reads the right bytes: the newest token's row is there, in the WAL until a checkpoint.
    expect(beforeCheckpoint.get(`${SQLITE_FILE_NAME}-wal`)?.includes(newest)).toBe(true);
    for (const bytes of beforeCheckpoint.values()) expectNoSecret(bytes, plaintexts);

    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(database.db);
    const afterCheckpoint = await filesOf();
    expect(afterCheckpoint.get(SQLITE_FILE_NAME)?.includes(newest)).toBe(true);
    for (const bytes of afterCheckpoint.values()) expectNoSecret(bytes, plaintexts);
  });
});
