// When the database is away or its disk is full, requests answer 503 with
// Retry-After (not 500), recover by themselves, and a failed last-used write
// never refuses a valid token. PostgreSQL is cut through a TCP proxy; the
// shared server itself is never stopped.
import { tmpdir } from 'node:os';
import { sql } from 'kysely';
import { afterEach, expect, it, vi } from 'vitest';
import { VerificationStore } from '../storage/verification-rows.ts';
import { KyselyStore, openDatabase, type Database } from '../storage/index.ts';
import { describeEachDialect } from '../storage/test-databases.ts';
import { startTcpProxy, type TcpProxy } from '../testing/tcp-proxy.ts';
import { bearer, createTestApp, expectProblem, ownerToken, type TestApp } from '../testing/test-app.ts';

/** What each driver throws when the disk is full. */
function diskFullError(dialect: 'sqlite' | 'postgres'): Error {
  return dialect === 'sqlite'
    ? Object.assign(new Error('database or disk is full'), { code: 'ERR_SQLITE_ERROR', errcode: 13, errstr: 'database or disk is full' })
    : Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' });
}

describeEachDialect('storage faults', (open, dialect) => {
  let t: TestApp | undefined;
  let proxy: TcpProxy | undefined;
  let direct: Database | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await t?.close();
    await proxy?.close();
    await direct?.close();
    t = proxy = direct = undefined;
  });

  it('answers a bearer read 200 when recording the last use fails, logs the failure and keeps the use for the next flush', async () => {
    t = await createTestApp(open);
    const token = await ownerToken(t);
    const write = vi.spyOn(VerificationStore.prototype, 'writeLastUses').mockRejectedValueOnce(diskFullError(dialect));
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token) });
    expect(response.statusCode, response.body).toBe(200);
    // Last use is written off the request path; a failed write is logged and retried.
    await t.context.verifier.flush();
    expect(write).toHaveBeenCalledTimes(1);
    expect(t.logs.some((line) => line.includes('could not write last-use times'))).toBe(true);
    expect(t.context.verifier.lastUse.size).toBeGreaterThan(0);
    await t.context.verifier.flush();
    expect(t.context.verifier.lastUse.size).toBe(0);
  });

  it('answers 503 service_unavailable with Retry-After when a write meets a full disk', async () => {
    t = await createTestApp(open);
    const token = await ownerToken(t);
    vi.spyOn(KyselyStore.prototype, 'insertToken').mockRejectedValue(diskFullError(dialect));
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(token), payload: { name: 'ci', scopes: ['tokens:read'] } });
    const body = expectProblem(response, 503, 'service_unavailable');
    expect(body.detail).not.toContain('disk');
    expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  if (dialect === 'postgres') {
    it('answers 503 with Retry-After while the database is unreachable, and serves again by itself once it is back', async () => {
      direct = await open();
      const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(direct.db);
      const target = new URL(process.env.KEYWARD_TEST_DATABASE_URL as string);
      const cutProxy = (proxy = await startTcpProxy(target.hostname, Number(target.port || 5432)));
      const proxied = new URL(target);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(cutProxy.port);
      t = await createTestApp(() => openDatabase({ databaseUrl: proxied.href, dataDir: tmpdir(), searchPath: rows[0]?.schema }));
      const app = t.app;
      const token = await ownerToken(t);
      const list = () => app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token) });
      expect((await list()).statusCode).toBe(200);

      cutProxy.cut();
      const refused = await list();
      expectProblem(refused, 503, 'service_unavailable');
      expect(refused.headers['retry-after']).toEqual(expect.stringMatching(/^\d+$/));
      // The sign-in path too, and the readiness probe says why.
      const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'owner@example.com', password: 'whatever it is here' } });
      expect(login.statusCode).toBe(503);
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expectProblem(ready, 503, 'service_unavailable');
      expect(ready.headers['retry-after']).toEqual(expect.stringMatching(/^\d+$/));

      cutProxy.restore();
      expect((await list()).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    });
  }
});
