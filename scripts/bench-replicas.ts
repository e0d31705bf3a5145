// The scale-out figure of issue 12 (docs/scaling.md): POST /api/v1/verify
// throughput with one and with three `keyward serve` replicas on PostgreSQL
// and Redis, under autocannon, through docs/scaling.md's nginx configuration
// (or, where nginx is not installed, the Node round-robin balancer of the
// multi-replica suite). The replicas are real child processes on 127.0.0.1,
// on a scratch database and Redis key prefix that are removed at the end.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newKeyringEntry } from '@keyward/core';
import { freePort } from '../packages/server/src/testing/gateway-process.ts';
import { call } from '../packages/server/src/scale/testing/http-calls.ts';
import { nginxBinary, startDocNginx } from '../packages/server/src/scale/testing/nginx-upstream.ts';
import { killAllReplicas, startReplica, type Replica } from '../packages/server/src/scale/testing/replica-process.ts';
import { startRoundRobinProxy } from '../packages/server/src/scale/testing/round-robin-proxy.ts';
import { createScratchDatabase, createScratchRedisPrefix } from '../packages/server/src/scale/testing/scratch-services.ts';
import type { Figures } from './bench-figures.ts';
import type { LoadPlan, LoadResult } from './bench-load.ts';
import { load } from './bench-verification.ts';

export interface ReplicasBenchOptions {
  quick: boolean;
  httpSeconds: number;
  log: (line: string) => void;
}

const CONNECTIONS = 32;
const ADMIN_EMAIL = 'bench@example.com';
const ADMIN_PASSWORD = 'benchmark password 123';

interface Balancer {
  url: string;
  kind: string;
  close(): Promise<void>;
}

async function startBalancer(replicas: readonly Replica[]): Promise<Balancer> {
  if (nginxBinary) {
    const port = await freePort();
    const nginx = await startDocNginx(replicas.map((replica) => replica.url), port);
    return { url: `http://127.0.0.1:${port}`, kind: "nginx (docs/scaling.md's configuration)", close: () => nginx.stop() };
  }
  const proxy = await startRoundRobinProxy(replicas.map((replica) => replica.url));
  return { url: proxy.url, kind: 'Node round-robin balancer (nginx is not installed)', close: () => proxy.close() };
}

/** User plus system CPU seconds the process has used so far (Linux /proc; 100 ticks a second). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Run extends LoadResult {
  /** CPU the replicas used per answered request (all replicas together): less noisy than req/s on a shared machine. */
  replicaCpuMicrosPerRequest: number;
}

async function measure(plan: LoadPlan, replicas: readonly Replica[], warmSeconds: number): Promise<Run> {
  await load({ ...plan, durationSeconds: warmSeconds });
  const before = replicas.map((replica) => cpuSeconds(replica.pid));
  const result = await load(plan);
  const used = replicas.reduce((sum, replica, index) => sum + cpuSeconds(replica.pid) - (before[index] ?? 0), 0);
  return { ...result, replicaCpuMicrosPerRequest: (used * 1e6) / Math.max(1, result.requests) };
}

export async function benchReplicas(figures: Figures, options: ReplicasBenchOptions): Promise<void> {
  const { log } = options;
  const databaseUrl = process.env.KEYWARD_BENCH_DATABASE_URL;
  const redisUrl = process.env.KEYWARD_BENCH_REDIS_URL;
  if (!databaseUrl || !redisUrl) {
    log('replicas: skipped (set KEYWARD_BENCH_DATABASE_URL=postgres://… and KEYWARD_BENCH_REDIS_URL=redis://… to measure 1 and 3 replicas)');
    return;
  }
  if (process.platform !== 'linux') {
    log('replicas: skipped (the replicas\' CPU is read from /proc: Linux only)');
    return;
  }
  log('replicas: 1 and 3 replicas on PostgreSQL and Redis');
  const database = await createScratchDatabase(databaseUrl);
  const redisPrefix = createScratchRedisPrefix(redisUrl);
  const workDir = await mkdtemp(path.join(tmpdir(), 'keyward-bench-replicas-'));
  const env = {
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    KEYWARD_REDIS_PREFIX: redisPrefix.prefix,
    KEYWARD_SECRETS: newKeyringEntry('v1'),
    KEYWARD_ADMIN_EMAIL: ADMIN_EMAIL,
    KEYWARD_ADMIN_PASSWORD: ADMIN_PASSWORD,
    KEYWARD_DATA_DIR: path.join(workDir, 'data'),
    KEYWARD_TRUSTED_PROXIES: '127.0.0.1/32',
    // The default, as deployed: one JSON line per request (read by this process, as a log shipper would).
    LOG_LEVEL: 'info',
  };
  let balancer: Balancer | undefined;
  try {
    const first = await startReplica('a', env, workDir);
    const replicas = [first];
    // Every replica logs every request; keep none of it in this process.
    const dropLogs = () => replicas.forEach((replica) => replica.logs.splice(0));

    const issued = await call(first.url, 'POST', '/api/v1/tokens', { body: { name: 'owner', email: ADMIN_EMAIL, password: ADMIN_PASSWORD, scopes: ['tokens:write', 'clients:manage', 'keyward:verify', 'scans:read'] } });
    if (issued.status !== 201) throw new Error(`could not sign in: ${issued.status} ${JSON.stringify(issued.body)}`);
    const owner = issued.body.token as string;
    const client = await call(first.url, 'POST', '/api/v1/clients', { token: owner, body: { name: 'gateway' } });
    const verifier = await call(first.url, 'POST', `/api/v1/clients/${client.body.id}/tokens`, { token: owner, body: { name: 'verifier', scopes: ['keyward:verify'] } });
    if (verifier.status !== 201) throw new Error(`could not issue the verify token: ${verifier.status} ${JSON.stringify(verifier.body)}`);
    const tokens: string[] = [];
    for (let i = 0; i < (options.quick ? 100 : 500); i++) {
      const created = await call(first.url, 'POST', '/api/v1/tokens', { token: owner, body: { name: `bench-${i}`, scopes: ['scans:read'] } });
      if (created.status !== 201) throw new Error(`could not create a bench token: ${created.status} ${JSON.stringify(created.body)}`);
      tokens.push(created.body.token);
    }
    dropLogs();

    const plan = (url: string): LoadPlan => ({
      url,
      method: 'POST',
      path: '/api/v1/verify',
      connections: CONNECTIONS,
      durationSeconds: options.httpSeconds,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${verifier.body.token}` },
      variants: tokens.map((token) => JSON.stringify({ token, scopes: ['scans:read'] })),
      vary: 'body',
    });
    const warmSeconds = options.quick ? 1 : 2;
    const setting = { connections: CONNECTIONS, seconds: options.httpSeconds, tokens: tokens.length, note: 'cache hits after the warm-up run; load generator, balancer and replicas share the machine' };
    const record = (name: string, run: Run, extra: Record<string, unknown>) =>
      figures.record(name, run.requestsPerSecond, 'req/s', {
        details: { ...setting, ...extra, requests: run.requests, p50Ms: run.p50Ms, p99Ms: run.p99Ms, statusCodes: run.statusCodes, errors: run.errors, timeouts: run.timeouts, replicaCpuMicrosPerRequest: Math.round(run.replicaCpuMicrosPerRequest) },
      });

    log('replicas: 1 replica, direct');
    const direct = await measure(plan(first.url), replicas, warmSeconds);
    dropLogs();
    record('POST /api/v1/verify, 1 replica on PostgreSQL + Redis, direct', direct, {});

    balancer = await startBalancer(replicas);
    log(`replicas: 1 replica through ${balancer.kind}`);
    const one = await measure(plan(balancer.url), replicas, warmSeconds);
    dropLogs();
    record('POST /api/v1/verify, 1 replica through the balancer', one, { balancer: balancer.kind });
    await balancer.close();

    replicas.push(...(await Promise.all(['b', 'c'].map((name) => startReplica(name, env, workDir)))));
    balancer = await startBalancer(replicas);
    log(`replicas: 3 replicas through ${balancer.kind}`);
    // B and C just started: a warm-up three times as long gives each as many warm requests as A had.
    const three = await measure(plan(balancer.url), replicas, warmSeconds * 3);
    dropLogs();
    record('POST /api/v1/verify, 3 replicas through the balancer', three, { balancer: balancer.kind });
  } finally {
    await balancer?.close();
    await killAllReplicas();
    await Promise.allSettled([database.drop(), redisPrefix.clean(), rm(workDir, { recursive: true, force: true })]);
  }
}
