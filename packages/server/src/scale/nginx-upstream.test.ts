// docs/scaling.md's nginx configuration, tested: the ```nginx block of the
// page, pointed at three real `keyward serve` replicas on PostgreSQL and
// Redis (a scratch database and key prefix), run by the real nginx.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newKeyringEntry } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../../sdk/src/index.ts';
import { freePort, type GatewayProcess } from '../testing/gateway-process.ts';
import { describeWithBinary } from '../testing/requires-binary.ts';
import { call, waitUntil } from './testing/http-calls.ts';
import { nginxBinary, startDocNginx } from './testing/nginx-upstream.ts';
import { killAllReplicas, startReplica, type Replica } from './testing/replica-process.ts';
import { createScratchDatabase, createScratchRedisPrefix, type ScratchDatabase, type ScratchRedisPrefix } from './testing/scratch-services.ts';

const DATABASE_URL = process.env.KEYWARD_TEST_DATABASE_URL;
const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL;
const ADMIN_EMAIL = 'owner@example.com';
const ADMIN_PASSWORD = 'a long password for the replicas';
const TITLE = 'docs/scaling.md: nginx upstream in front of three replicas';

if (!DATABASE_URL || !REDIS_URL) {
  describe(TITLE, () => {
    it.skip('skipped: set KEYWARD_TEST_DATABASE_URL and KEYWARD_TEST_REDIS_URL (a PostgreSQL and a Redis to start replicas against)', () => {});
  });
} else {
  describeWithBinary(nginxBinary, 'nginx', TITLE, () => {
    let database: ScratchDatabase;
    let redisPrefix: ScratchRedisPrefix;
    let workDir: string;
    let replicas: Replica[];
    let nginx: GatewayProcess;
    let url: string;
    let owner: string;
    let verifyToken: string;

    const createToken = async (): Promise<{ id: string; token: string }> => {
      const created = await call(url, 'POST', '/api/v1/tokens', { token: owner, body: { name: `t-${Math.random().toString(36).slice(2, 10)}`, scopes: ['scans:read'] } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return { id: created.body.id, token: created.body.token };
    };
    const verify = async (token: string): Promise<string> => {
      const answer = await call(url, 'POST', '/api/v1/verify', { token: verifyToken, body: { token } });
      return answer.status === 200 ? answer.body.code : `HTTP ${answer.status} ${answer.body?.code ?? ''}`.trim();
    };
    /** The verifications each replica has logged so far. */
    const verificationsPerReplica = () =>
      replicas.map((replica) => replica.logs.filter((line) => line.includes('"incoming request"') && line.includes('"url":"/api/v1/verify"')).length);

    beforeAll(async () => {
      database = await createScratchDatabase(DATABASE_URL);
      redisPrefix = createScratchRedisPrefix(REDIS_URL);
      workDir = await mkdtemp(join(tmpdir(), 'keyward-nginx-'));
      const env = {
        HOST: '127.0.0.1',
        PORT: '0',
        DATABASE_URL: database.url,
        REDIS_URL,
        KEYWARD_REDIS_PREFIX: redisPrefix.prefix,
        KEYWARD_SECRETS: newKeyringEntry('v1'),
        KEYWARD_ADMIN_EMAIL: ADMIN_EMAIL,
        KEYWARD_ADMIN_PASSWORD: ADMIN_PASSWORD,
        KEYWARD_DATA_DIR: join(workDir, 'data'),
        // nginx connects from 127.0.0.1, as the doc's environment says.
        KEYWARD_TRUSTED_PROXIES: '127.0.0.1/32',
        LOG_LEVEL: 'info',
      };
      replicas = await Promise.all(['a', 'b', 'c'].map((name) => startReplica(name, env, workDir)));
      const port = await freePort();
      nginx = await startDocNginx(replicas.map((replica) => replica.url), port);
      url = `http://127.0.0.1:${port}`;

      const issued = await call(url, 'POST', '/api/v1/tokens', { body: { name: 'owner', email: ADMIN_EMAIL, password: ADMIN_PASSWORD, scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'keyward:verify', 'scans:read'] } });
      expect(issued.status, `${JSON.stringify(issued.body)}\n${nginx.output()}`).toBe(201);
      owner = issued.body.token;
      const client = await call(url, 'POST', '/api/v1/clients', { token: owner, body: { name: 'gateway' } });
      const verifier = await call(url, 'POST', `/api/v1/clients/${client.body.id}/tokens`, { token: owner, body: { name: 'verifier', scopes: ['keyward:verify'] } });
      expect(verifier.status, JSON.stringify(verifier.body)).toBe(201);
      verifyToken = verifier.body.token;
    }, 60_000);

    afterAll(async () => {
      await nginx?.stop();
      await killAllReplicas();
      await Promise.allSettled([database?.drop(), redisPrefix?.clean(), workDir ? rm(workDir, { recursive: true, force: true }) : undefined]);
    }, 30_000);

    it('spreads requests over the three replicas', async () => {
      const { token } = await createToken();
      const before = verificationsPerReplica();
      for (let i = 0; i < 30; i++) expect(await verify(token)).toBe('VALID');
      const received = verificationsPerReplica().map((count, index) => count - (before[index] ?? 0));
      expect(received.reduce((sum, count) => sum + count, 0)).toBe(30);
      // Round robin gives each 10; a margin for a request nginx retried elsewhere.
      for (const count of received) expect(count).toBeGreaterThanOrEqual(5);
    });

    it('verifies through nginx a token created through nginx, whichever replica answers', async () => {
      const { token } = await createToken();
      for (let i = 0; i < 3; i++) expect(await verify(token)).toBe('VALID');
    });

    it('refuses through nginx, within a second and then on every replica, a token revoked through nginx that every replica had cached', async () => {
      let refusedAtOnce = 0;
      const rounds = 20;
      for (let i = 0; i < rounds; i++) {
        const { id, token } = await createToken();
        for (let j = 0; j < 3; j++) expect(await verify(token)).toBe('VALID');
        const started = performance.now();
        expect((await call(url, 'DELETE', `/api/v1/tokens/${id}`, { token: owner })).status).toBe(204);
        // The next request usually lands on a replica that has already heard it
        // on Redis; racing the bus, it may not yet (SPEC §4: within 1 s).
        const next = await verify(token);
        if (next === 'REVOKED') refusedAtOnce++;
        else expect(next).toBe('VALID');
        // Within 1 s every replica has heard it: a whole round robin (one request to each of the
        // three) answers REVOKED. One replica refusing says nothing yet of the others' buses.
        const everyReplicaRefuses = async () => {
          for (let j = 0; j < 3; j++) if ((await verify(token)) !== 'REVOKED') return false;
          return true;
        };
        const waited = await waitUntil(everyReplicaRefuses, 1_000 - (performance.now() - started));
        expect(waited, 'a token revoked through nginx still verified on some replica after 1 s').not.toBeNull();
        // And from then on no replica answers VALID again.
        for (let j = 0; j < 3; j++) expect(await verify(token)).toBe('REVOKED');
      }
      console.log(`nginx: ${refusedAtOnce} of ${rounds} revoked tokens were refused by the very next request through nginx; the rest within 1 s`);
    });

    it('streams revocations to an SDK verifier through nginx within a second over the event stream', async () => {
      const sdk = createVerifier({ baseUrl: url, token: verifyToken });
      try {
        await sdk.whenStreamOpen();
        for (let i = 0; i < 5; i++) {
          const { id, token } = await createToken();
          expect((await sdk.verify(token)).code).toBe('VALID');
          const started = performance.now();
          expect((await call(url, 'DELETE', `/api/v1/tokens/${id}`, { token: owner })).status).toBe(204);
          // The SDK answers from its own cache until the event arrives: REVOKED means the stream delivered it.
          const waited = await waitUntil(async () => (await sdk.verify(token)).code === 'REVOKED', 1_000 - (performance.now() - started), 2);
          expect(waited, 'the SDK verifier behind nginx still had the revoked token after 1 s').not.toBeNull();
        }
      } finally {
        await sdk.close();
      }
    });

    it('keeps answering through nginx when a replica is killed, /readyz included', async () => {
      const { token } = await createToken();
      const victim = replicas[1] as Replica;
      process.kill(victim.pid, 'SIGKILL');
      await victim.exited;
      // Each request nginx sends to the dead replica is refused at connect, so it goes to the next one.
      for (let i = 0; i < 12; i++) expect(await verify(token)).toBe('VALID');
      for (let i = 0; i < 6; i++) {
        expect((await call(url, 'GET', '/readyz')).status).toBe(200);
        expect((await call(url, 'GET', '/api/v1/tokens/current', { token: owner })).status).toBe(200);
      }
      expect((await createToken()).token).toMatch(/^kw_/);
    });
  });
}
