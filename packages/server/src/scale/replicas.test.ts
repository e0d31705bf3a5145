// Scale-out proven on this machine (SPEC §5, issue 12): three `keyward serve`
// processes on one PostgreSQL database and one Redis, behind a round-robin
// load balancer. PostgreSQL and Redis are reached through TCP proxies started
// here, so the fault tests can cut them without touching the shared servers.
//
// The tests share one cluster and run in order: the last ones cut the
// dependencies, kill a replica and stop the others, and check what the earlier
// ones left in the database.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newKeyringEntry } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../../sdk/src/index.ts';
import { dialectCapabilities } from '../storage/dialect-capabilities.ts';
import { allMigrations } from '../storage/migrations/index.ts';
import { startTcpProxy, type TcpProxy } from '../testing/tcp-proxy.ts';
import { call, percentile, waitUntil } from './testing/http-calls.ts';
import { killAllReplicas, startReplica, type Replica } from './testing/replica-process.ts';
import { startRoundRobinProxy, type RoundRobinProxy } from './testing/round-robin-proxy.ts';
import { createScratchDatabase, createScratchRedisPrefix, type ScratchDatabase, type ScratchRedisPrefix } from './testing/scratch-services.ts';

const DATABASE_URL = process.env.KEYWARD_TEST_DATABASE_URL;
const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL;
const ADMIN_EMAIL = 'owner@example.com';
const ADMIN_PASSWORD = 'a long password for the replicas';
const OWNER_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read', 'keyward:verify', 'scans:*'];
const REVOCATIONS = 100;

function format(samples: readonly number[]): string {
  return `p50 ${percentile(samples, 0.5).toFixed(1)} ms, p99 ${percentile(samples, 0.99).toFixed(1)} ms, max ${Math.max(...samples).toFixed(1)} ms (n=${samples.length})`;
}

function tally(codes: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const code of codes) counts[code] = (counts[code] ?? 0) + 1;
  return counts;
}

if (!DATABASE_URL || !REDIS_URL) {
  describe('three replicas on PostgreSQL and Redis', () => {
    it.skip(`skipped: set KEYWARD_TEST_DATABASE_URL and KEYWARD_TEST_REDIS_URL (a PostgreSQL and a Redis to start replicas against)`, () => {});
  });
} else {
  describe('three replicas on PostgreSQL and Redis', () => {
    let database: ScratchDatabase;
    let redisPrefix: ScratchRedisPrefix;
    let postgresProxy: TcpProxy;
    let redisProxy: TcpProxy;
    let workDir: string;
    let env: Record<string, string>;
    let a: Replica;
    let b: Replica;
    let c: Replica;
    let balancer: RoundRobinProxy;
    let owner: string;
    let verifyToken: string;

    const createToken = async (on: Replica | RoundRobinProxy, body: Record<string, unknown> = {}): Promise<{ id: string; token: string }> => {
      const created = await call(on.url, 'POST', '/api/v1/tokens', { token: owner, body: { name: `t-${Math.random().toString(36).slice(2, 10)}`, scopes: ['scans:read'], ...body } });
      if (created.status !== 201) throw new Error(`creating a token failed: ${created.status} ${JSON.stringify(created.body)}`);
      return { id: created.body.id, token: created.body.token };
    };
    const verify = async (on: Replica | RoundRobinProxy, token: string, extra: Record<string, unknown> = {}): Promise<{ status: number; code: string; body: any }> => {
      const answer = await call(on.url, 'POST', '/api/v1/verify', { token: verifyToken, body: { token, ...extra } });
      return { status: answer.status, code: answer.status === 200 ? answer.body.code : `HTTP ${answer.status} ${answer.body?.code ?? ''}`.trim(), body: answer.body };
    };
    const usageOf = async (tokenId: string): Promise<Record<string, number>> => {
      const rows = await database.query<{ code: string; n: number }>('select code, sum(count)::int as n from usage_counts where token_id = $1 group by code', [tokenId]);
      return Object.fromEntries(rows.map((row) => [row.code, row.n]));
    };

    beforeAll(async () => {
      database = await createScratchDatabase(DATABASE_URL);
      redisPrefix = createScratchRedisPrefix(REDIS_URL);
      const postgres = new URL(database.url);
      const redis = new URL(REDIS_URL);
      postgresProxy = await startTcpProxy(postgres.hostname, Number(postgres.port || 5432));
      redisProxy = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
      postgres.hostname = redis.hostname = '127.0.0.1';
      postgres.port = String(postgresProxy.port);
      redis.port = String(redisProxy.port);
      workDir = await mkdtemp(join(tmpdir(), 'keyward-replicas-'));
      env = {
        HOST: '127.0.0.1',
        PORT: '0',
        DATABASE_URL: postgres.href,
        REDIS_URL: redis.href,
        KEYWARD_REDIS_PREFIX: redisPrefix.prefix,
        KEYWARD_SECRETS: newKeyringEntry('v1'),
        KEYWARD_ADMIN_EMAIL: ADMIN_EMAIL,
        KEYWARD_ADMIN_PASSWORD: ADMIN_PASSWORD,
        KEYWARD_DATA_DIR: join(workDir, 'data'),
        KEYWARD_PASSWORD_FLOW_MAX: '1000',
        // Last uses reach the database only when a replica stops, so the test sees the shutdown write them.
        KEYWARD_LAST_USED_FLUSH_SECONDS: '3600',
        // Longer than the whole suite: a cached token must not expire in the middle of an outage test.
        KEYWARD_CACHE_TTL_SECONDS: '600',
        LOG_LEVEL: 'info',
      };
      // All three at once on the empty database: the migrations race unless something orders them.
      [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => startReplica(name, env, workDir))) as [Replica, Replica, Replica];
      balancer = await startRoundRobinProxy([a.url, b.url, c.url]);

      const issued = await call(a.url, 'POST', '/api/v1/tokens', { body: { name: 'owner', email: ADMIN_EMAIL, password: ADMIN_PASSWORD, scopes: OWNER_SCOPES } });
      expect(issued.status, JSON.stringify(issued.body)).toBe(201);
      owner = issued.body.token;
      const client = await call(a.url, 'POST', '/api/v1/clients', { token: owner, body: { name: 'gateway' } });
      const verifier = await call(a.url, 'POST', `/api/v1/clients/${client.body.id}/tokens`, { token: owner, body: { name: 'verifier', scopes: ['keyward:verify'] } });
      expect(verifier.status, JSON.stringify(verifier.body)).toBe(201);
      verifyToken = verifier.body.token;
    }, 90_000);

    afterAll(async () => {
      await killAllReplicas();
      await balancer?.close();
      await postgresProxy?.close();
      await redisProxy?.close();
      await Promise.allSettled([database?.drop(), redisPrefix?.clean(), workDir ? rm(workDir, { recursive: true, force: true }) : undefined]);
    }, 30_000);

    it('runs each migration once when the three replicas start together on an empty database', async () => {
      const rows = await database.query<{ name: string; n: number }>('select name, count(*)::int as n from kysely_migration group by name order by name');
      expect(rows).toEqual(Object.keys(allMigrations(dialectCapabilities('postgres'))).map((name) => ({ name, n: 1 })));
      // The first owner too: one replica created it, the others found it.
      const owners = [a, b, c].filter((replica) => replica.logs.some((line) => line.includes('created the first owner from KEYWARD_ADMIN_EMAIL')));
      expect(owners).toHaveLength(1);
      expect(await database.query('select id from users')).toHaveLength(1);
      for (const replica of [a, b, c]) expect((await call(replica.url, 'GET', '/readyz')).body).toMatchObject({ status: 'ready' });
    });

    it('verifies on B and C a token created through A', async () => {
      const { token } = await createToken(a);
      for (const replica of [b, c]) expect(await verify(replica, token, { scopes: ['scans:read'] })).toMatchObject({ status: 200, code: 'VALID' });
    });

    it(`refuses on B and C, within a second, a token revoked on A (${REVOCATIONS} revocations)`, async () => {
      const delays: number[] = [];
      const acknowledgedAfter: number[] = [];
      const afterAnswer: number[] = [];
      for (let i = 0; i < REVOCATIONS; i++) {
        const { id, token } = await createToken(a);
        // Cached as valid on both first: the revocation has to reach them.
        for (const replica of [b, c]) expect((await verify(replica, token)).code).toBe('VALID');
        const started = performance.now();
        const revoked = call(a.url, 'DELETE', `/api/v1/tokens/${id}`, { token: owner }).then((answer) => {
          acknowledgedAfter.push(performance.now() - started);
          return answer;
        });
        const refused = await Promise.all(
          [b, c].map(async (replica) => {
            const waited = await waitUntil(async () => (await verify(replica, token)).code === 'REVOKED', 5_000);
            return waited === null ? null : performance.now() - started;
          }),
        );
        expect((await revoked).status).toBe(204);
        const acknowledged = acknowledgedAfter.at(-1) as number;
        for (const delay of refused) {
          expect(delay, 'a revoked token stayed valid on another replica for 5 s').not.toBeNull();
          delays.push(delay as number);
          // Propagation alone: 0 when B or C refused it before A's answer arrived here.
          afterAnswer.push(Math.max(0, (delay as number) - acknowledged));
        }
      }
      console.log(`revocation on A refused on B and C: ${format(delays)} from the DELETE being sent (the DELETE itself answered in ${format(acknowledgedAfter)}; after its answer: ${format(afterAnswer)})`);
      // The spec's second, asserted on the median only: this machine is shared and a p99 may stall.
      expect(percentile(delays, 0.5)).toBeLessThan(1000);
    }, 120_000);

    it('drops a revoked token from an SDK verifier connected to B within a second of the revoke on A', async () => {
      const sdk = createVerifier({ baseUrl: b.url, token: verifyToken });
      try {
        await sdk.whenStreamOpen();
        const delays: number[] = [];
        for (let i = 0; i < 20; i++) {
          const { id, token } = await createToken(a);
          expect((await sdk.verify(token)).code).toBe('VALID');
          const started = performance.now();
          expect((await call(a.url, 'DELETE', `/api/v1/tokens/${id}`, { token: owner })).status).toBe(204);
          const waited = await waitUntil(async () => (await sdk.verify(token)).code === 'REVOKED', 5_000, 2);
          expect(waited, 'the SDK verifier kept a revoked token for 5 s').not.toBeNull();
          delays.push(performance.now() - started);
        }
        console.log(`revocation on A seen by an SDK verifier on B: ${format(delays)}`);
        expect(percentile(delays, 0.5)).toBeLessThan(1000);
      } finally {
        await sdk.close();
      }
    }, 60_000);

    it('reports in /metrics the event bus lag, the write buffers and the PostgreSQL pool', async () => {
      const metrics = (await call(b.url, 'GET', '/metrics')).body as string;
      // B heard every revocation above from A through Redis.
      expect(metrics).toMatch(/^keyward_event_bus_lag_seconds_count\{service="keyward"\} [1-9]\d*$/m);
      expect(metrics).toMatch(/^keyward_event_bus_resubscriptions_total\{service="keyward"\} 0$/m);
      for (const buffer of ['last_use', 'usage', 'unsent_events']) expect(metrics).toMatch(new RegExp(`^keyward_buffer_pending\\{[^}]*buffer="${buffer}"[^}]*\\} \\d+$`, 'm'));
      for (const state of ['total', 'idle', 'waiting', 'max']) expect(metrics).toMatch(new RegExp(`^keyward_db_pool_connections\\{[^}]*state="${state}"[^}]*\\} \\d+$`, 'm'));
      expect(metrics).toMatch(/^keyward_buffer_flush_duration_seconds_count\{[^}]*buffer="usage"[^}]*\} [1-9]\d*$/m);
    });

    it('admits a per-token rate limit of N exactly N times in total across the replicas', async () => {
      const { token } = await createToken(a, { rateLimit: { limit: 12, windowSeconds: 300 } });
      const codes = await Promise.all(Array.from({ length: 36 }, async () => (await verify(balancer, token)).code));
      expect(tally(codes)).toEqual({ VALID: 12, RATE_LIMITED: 24 });
    });

    it('admits a client-level limit of N exactly N times in total across the replicas and the client\'s tokens', async () => {
      const client = await call(a.url, 'POST', '/api/v1/clients', { token: owner, body: { name: 'metered', rateLimit: { limit: 9, windowSeconds: 300 } } });
      expect(client.status).toBe(201);
      const tokens = await Promise.all(
        ['one', 'two'].map(async (name) => (await call(a.url, 'POST', `/api/v1/clients/${client.body.id}/tokens`, { token: owner, body: { name, scopes: ['scans:read'] } })).body.token as string),
      );
      const codes = await Promise.all(Array.from({ length: 30 }, async (_, i) => (await verify(balancer, tokens[i % 2] as string)).code));
      expect(tally(codes)).toEqual({ VALID: 9, RATE_LIMITED: 21 });
    });

    it('spends a quota of N credits exactly: N concurrent verifications across the replicas are VALID, the rest USAGE_EXCEEDED', async () => {
      const { id, token } = await createToken(a, { remaining: 25 });
      const codes = await Promise.all(Array.from({ length: 60 }, async () => (await verify(balancer, token)).code));
      expect(tally(codes)).toEqual({ VALID: 25, USAGE_EXCEEDED: 35 });
      expect(await database.query('select remaining::int from tokens where id = $1', [id])).toEqual([{ remaining: 0 }]);
    });

    it('keeps verifying from caches while Redis is cut, reports redis degraded, and drops every cache once the bus is back', async () => {
      const kept = await createToken(a);
      const revokedDuringOutage = await createToken(a);
      for (const replica of [b, c]) for (const { token } of [kept, revokedDuringOutage]) expect((await verify(replica, token)).code).toBe('VALID');
      redisProxy.cut();
      try {
        for (const replica of [a, b, c]) {
          const degraded = await waitUntil(async () => (await call(replica.url, 'GET', '/readyz')).body?.status === 'degraded', 5_000, 50);
          expect(degraded, `${replica.name} did not report degraded`).not.toBeNull();
          expect((await call(replica.url, 'GET', '/readyz')).body).toEqual({ status: 'degraded', checks: { database: 'ok', cache: 'unreachable' }, degraded: ['redis'] });
        }
        for (const replica of [a, b, c]) expect((await verify(replica, kept.token)).code).toBe('VALID');
        // Writes go on (PostgreSQL holds them); only the news cannot travel.
        expect((await call(a.url, 'DELETE', `/api/v1/tokens/${revokedDuringOutage.id}`, { token: owner })).status).toBe(204);
        expect((await verify(a, revokedDuringOutage.token)).code).toBe('REVOKED');
        // B and C cannot hear it: stale at most until the cache TTL, or until Redis is back.
        expect((await verify(b, revokedDuringOutage.token)).code).toBe('VALID');
      } finally {
        redisProxy.restore();
      }
      const restored = performance.now();
      const heard = await Promise.all(
        [b, c].map((replica) => waitUntil(async () => (await verify(replica, revokedDuringOutage.token)).code === 'REVOKED', 15_000, 20)),
      );
      expect(heard, 'a replica kept a token revoked during the outage after Redis came back').not.toContain(null);
      console.log(`Redis back: the token revoked during the outage was refused on B and C ${(performance.now() - restored).toFixed(0)} ms after the proxy was restored`);
      for (const replica of [a, b, c]) {
        expect(await waitUntil(async () => (await call(replica.url, 'GET', '/readyz')).body?.status === 'ready', 10_000, 50)).not.toBeNull();
        expect((await verify(replica, kept.token)).code).toBe('VALID');
      }
      const metrics = (await call(b.url, 'GET', '/metrics')).body as string;
      expect(metrics).toMatch(/^keyward_event_bus_resubscriptions_total\{service="keyward"\} [1-9]/m);
    }, 60_000);

    it('keeps cached tokens verifying while PostgreSQL is cut, fails the rest closed with 503, and resumes by itself', async () => {
      const cached = await createToken(a);
      const uncached = await createToken(a);
      expect((await verify(b, cached.token)).code).toBe('VALID');
      postgresProxy.cut();
      let restoredAt: number;
      try {
        expect(await verify(b, cached.token)).toMatchObject({ status: 200, code: 'VALID' });
        expect(await verify(b, uncached.token)).toMatchObject({ status: 503, body: { code: 'service_unavailable' } });
        const write = await call(a.url, 'POST', '/api/v1/tokens', { token: owner, body: { name: 'during-the-outage', scopes: ['scans:read'] } });
        expect(write).toMatchObject({ status: 503, body: { code: 'service_unavailable' } });
        const ready = await call(c.url, 'GET', '/readyz');
        expect(ready).toMatchObject({ status: 503, body: { code: 'service_unavailable', detail: expect.stringMatching(/database/) } });
      } finally {
        restoredAt = performance.now();
        postgresProxy.restore();
      }
      const resumed = await waitUntil(async () => (await verify(b, uncached.token)).code === 'VALID', 20_000, 50);
      expect(resumed, 'verification did not resume once PostgreSQL was back').not.toBeNull();
      expect(await waitUntil(async () => (await call(a.url, 'POST', '/api/v1/tokens', { token: owner, body: { name: 'after-the-outage', scopes: ['scans:read'] } })).status === 201, 20_000, 50)).not.toBeNull();
      console.log(`PostgreSQL back: verification of an uncached token resumed ${(performance.now() - restoredAt).toFixed(0)} ms after the proxy was restored`);
      // The refused write left nothing behind.
      expect(await database.query("select id from tokens where name = 'during-the-outage'")).toEqual([]);
    }, 60_000);

    it('loses no acknowledged create, rotate or revoke and leaves no row without its audit event when a replica is killed (SIGKILL) under load', async () => {
      const d = await startReplica('d', env, workDir);
      const acknowledged = { created: [] as string[], rotated: [] as { from: string; to: string }[], revoked: [] as string[] };
      const live: string[] = [];
      let isKilled = false;
      const worker = async (index: number) => {
        for (let step = 0; !isKilled; step++) {
          try {
            const kind = step % 3;
            if (kind === 0 || live.length === 0) {
              const created = await call(d.url, 'POST', '/api/v1/tokens', { token: owner, body: { name: `load-${index}-${step}`, scopes: ['scans:read'] } });
              if (created.status === 201) {
                acknowledged.created.push(created.body.id);
                live.push(created.body.id);
              }
            } else if (kind === 1) {
              const from = live.shift() as string;
              const rotated = await call(d.url, 'POST', `/api/v1/tokens/${from}/rotate`, { token: owner, body: {} });
              if (rotated.status === 201) {
                acknowledged.rotated.push({ from, to: rotated.body.id });
                live.push(rotated.body.id);
              }
            } else {
              const id = live.shift() as string;
              if ((await call(d.url, 'DELETE', `/api/v1/tokens/${id}`, { token: owner })).status === 204) acknowledged.revoked.push(id);
            }
          } catch {
            // The connection died with the replica: not acknowledged.
          }
        }
      };
      const load = Promise.all(Array.from({ length: 6 }, (_, index) => worker(index)));
      await waitUntil(async () => acknowledged.created.length >= 20 && acknowledged.revoked.length >= 5, 20_000, 20);
      process.kill(d.pid, 'SIGKILL');
      await d.exited;
      isKilled = true;
      await load;
      console.log(`SIGKILL under load: ${acknowledged.created.length} creates, ${acknowledged.rotated.length} rotations, ${acknowledged.revoked.length} revocations acknowledged before the kill`);

      const rows = await database.query<{ id: string; rotated_from: string | null; revoked: boolean }>("select id, rotated_from, revoked_at is not null as revoked from tokens where name like 'load-%'");
      const byId = new Map(rows.map((row) => [row.id, row]));
      for (const id of acknowledged.created) expect(byId.has(id), `created ${id} is missing`).toBe(true);
      for (const { from, to } of acknowledged.rotated) expect(byId.get(to)?.rotated_from, `rotation ${from} -> ${to} is missing`).toBe(from);
      for (const id of acknowledged.revoked) expect(byId.get(id)?.revoked, `revocation of ${id} is missing`).toBe(true);
      // Every row that exists came with its audit event, acknowledged or not: one transaction each.
      const audits = await database.query<{ action: string; target_id: string; new_token_id: string | null }>(
        "select action, target_id, details::json->>'newTokenId' as new_token_id from audit_events where action in ('token.created', 'token.rotated', 'token.revoked')",
      );
      const createdAudits = new Set(audits.filter((row) => row.action === 'token.created').map((row) => row.target_id));
      const rotatedAudits = new Set(audits.filter((row) => row.action === 'token.rotated').map((row) => row.new_token_id));
      const revokedAudits = new Set(audits.filter((row) => row.action === 'token.revoked').map((row) => row.target_id));
      for (const row of rows) {
        if (row.rotated_from === null) expect(createdAudits.has(row.id), `token ${row.id} has no token.created audit`).toBe(true);
        else expect(rotatedAudits.has(row.id), `token ${row.id} has no token.rotated audit`).toBe(true);
        if (row.revoked) expect(revokedAudits.has(row.id), `token ${row.id} is revoked without a token.revoked audit`).toBe(true);
      }
    }, 60_000);

    it('drains in-flight requests on SIGTERM, then writes usage counts and last uses once each', async () => {
      const { id, token } = await createToken(a);
      const codes = await Promise.all(Array.from({ length: 30 }, async () => (await verify(balancer, token, { ip: '203.0.113.7' })).code));
      expect(tally(codes)).toEqual({ VALID: 30 });
      // Buffered: nothing written per verification.
      expect(await database.query('select last_used_at from tokens where id = $1', [id])).toEqual([{ last_used_at: null }]);

      // Requests C has begun when it is told to stop are answered, not cut: the
      // password flow (argon2) is slow enough to be surely under way.
      const logsBefore = c.logs.length;
      const slow = Array.from({ length: 4 }, (_, i) =>
        call(c.url, 'POST', '/api/v1/tokens', { body: { name: `drained-${i}`, email: ADMIN_EMAIL, password: ADMIN_PASSWORD, scopes: ['scans:read'] } }),
      );
      const quick = Array.from({ length: 20 }, () =>
        verify(c, token, { ip: '203.0.113.7' }).then(
          (answer) => (answer.status === 200 ? 200 : `${answer.status} ${answer.body?.code}`),
          () => 'not connected',
        ),
      );
      const isUnderWay = () => c.logs.slice(logsBefore).filter((line) => line.includes('"incoming request"') && line.includes('"url":"/api/v1/tokens"') && line.includes('"POST"')).length >= 4;
      expect(await waitUntil(async () => isUnderWay(), 20_000, 5)).not.toBeNull();
      const stopping = c.stop('SIGTERM');
      const created = await Promise.all(slow);
      expect(created.map((answer) => answer.status)).toEqual([201, 201, 201, 201]);
      const statuses = await Promise.all(quick);
      const drained = statuses.filter((status) => status === 200).length;
      // A request C never received (refused once it stopped listening) is one a load balancer sends elsewhere.
      // One that arrived once C was closing is refused as a problem the client may retry.
      expect(statuses.filter((status) => status !== 200 && status !== '503 service_unavailable' && status !== 'not connected')).toEqual([]);
      console.log(`SIGTERM on C: 4 of 4 password-flow requests under way answered 201; of 20 verifications sent meanwhile ${drained} answered 200, the rest were refused or answered 503`);
      expect(await stopping).toEqual({ code: 0, signal: null });
      expect(await database.query("select count(*)::int as n from tokens where name like 'drained-%'")).toEqual([{ n: 4 }]);

      const exits = await Promise.all([a, b].map((replica) => replica.stop('SIGTERM')));
      expect(exits).toEqual([0, 0].map((code) => ({ code, signal: null })));
      expect(await usageOf(id)).toEqual({ VALID: 30 + drained });
      const [row] = await database.query<{ last_used_at: Date | null; last_used_ip: string | null }>('select last_used_at, last_used_ip from tokens where id = $1', [id]);
      expect(row?.last_used_at).toBeInstanceOf(Date);
      expect(row?.last_used_ip).toBe('203.0.113.7');
    }, 60_000);
  });
}
