// npm run bench: figures, not assertions. Times the pieces of the management
// path on this machine (token format checks, HMAC hashing, argon2id, bearer
// authentication against the database, whole requests through Fastify), then
// the verification path of issue 9 (scripts/bench-verification.ts), the SDK of
// issue 10 (scripts/bench-sdk.ts), then verification throughput with 1 and 3
// replicas (scripts/bench-replicas.ts). Prints a
// JSON report and a table, and writes the report to bench-report.json.
//
// Settings (environment):
//   KEYWARD_BENCH_QUICK=1             fewer rounds and rows, short HTTP runs: for development
//   KEYWARD_BENCH_SECONDS=10          length of each measured HTTP run
//   KEYWARD_BENCH_TOKENS=1000000      stored tokens for the large-table latency figure
//   KEYWARD_BENCH_ONLY=verification   or `management`, `sdk`, `replicas`: run one part only
//   KEYWARD_BENCH_REPORT=path.json    where the JSON report goes (default ./bench-report.json)
//   KEYWARD_BENCH_DATABASE_URL=postgres://…   the management storage figures on PostgreSQL too
//   KEYWARD_BENCH_REDIS_URL=redis://…          with the above: 1 vs 3 replicas (skipped without both)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { sql } from 'kysely';
import { DEFAULT_TOKEN_PREFIXES, authenticateToken, bootstrapOwner, generateToken, hashToken, newKeyringEntry, parseKeyring, parseToken } from '@keyward/core';
import { argon2Hasher, buildApp, loadConfig, migrateToLatest, openDatabase, type Database } from '@keyward/server';
import { Figures, asyncOpsPerSecond, median, opsPerSecond, percentile } from './bench-figures.ts';
import { benchSdk } from './bench-sdk.ts';
import { benchReplicas } from './bench-replicas.ts';
import { benchVerification } from './bench-verification.ts';

const figures = new Figures();
const record = (name: string, value: number, unit: string) => figures.record(name, value, unit);

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1) throw new Error(`${name} must be a whole number above 0, got "${raw}"`);
  return value;
}

async function benchStorage(label: string, database: Database): Promise<void> {
  const keyring = parseKeyring(newKeyringEntry('v1'));
  const config = loadConfig({ LOG_LEVEL: 'silent', KEYWARD_PASSWORD_FLOW_MAX: '1000000' }, tmpdir());
  const { app, context } = await buildApp({ config, database, keyring });
  await app.ready();
  const password = 'benchmark password 123';
  await bootstrapOwner(context.deps, { email: 'bench@example.com', password, organizationName: 'Bench', organizationSlug: 'bench' });

  const createLatencies: number[] = [];
  const tokens: string[] = [];
  for (let i = 0; i < 200; i += 1) {
    const start = performance.now();
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: i === 0 ? {} : { authorization: `Bearer ${tokens[0]}` },
      payload: i === 0 ? { name: 'bench-0', email: 'bench@example.com', password, scopes: ['tokens:read', 'tokens:write'] } : { name: `bench-${i}`, scopes: ['tokens:read'] },
    });
    if (i > 0) createLatencies.push(performance.now() - start);
    tokens.push((response.json() as { token: string }).token);
  }
  record(`${label}: POST /api/v1/tokens with a bearer token, median`, median(createLatencies), 'ms');

  const request = { ip: '127.0.0.1', userAgent: null, requestId: null };
  let next = 0;
  const authRate = await asyncOpsPerSecond(5, 1000, () => authenticateToken(context.deps, tokens[next++ % tokens.length] as string, request));
  record(`${label}: bearer authentication (checksum, indexed read, owner's membership)`, authRate, 'ops/s');

  const latencies: number[] = [];
  const start = performance.now();
  for (let i = 0; i < 3000; i += 1) {
    const begin = performance.now();
    await app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: { authorization: `Bearer ${tokens[i % tokens.length]}` } });
    latencies.push(performance.now() - begin);
  }
  record(`${label}: GET /api/v1/tokens/current through Fastify (inject, sequential)`, 3000 / ((performance.now() - start) / 1000), 'req/s');
  record(`${label}: GET /api/v1/tokens/current p50`, percentile(latencies, 50), 'ms');
  record(`${label}: GET /api/v1/tokens/current p99`, percentile(latencies, 99), 'ms');

  const listLatencies: number[] = [];
  for (let i = 0; i < 300; i += 1) {
    const begin = performance.now();
    await app.inject({ method: 'GET', url: '/api/v1/tokens?limit=100', headers: { authorization: `Bearer ${tokens[0]}` } });
    listLatencies.push(performance.now() - begin);
  }
  record(`${label}: GET /api/v1/tokens?limit=100 (200 tokens) median`, median(listLatencies), 'ms');
  await app.close();
}

async function benchManagement(): Promise<void> {
  const keyring = parseKeyring(newKeyringEntry('v1'));
  const token = generateToken(DEFAULT_TOKEN_PREFIXES.personal);
  const garbage = `${token.slice(0, -1)}${token.endsWith('a') ? 'b' : 'a'}`;
  record('generateToken', opsPerSecond(5, 20_000, () => generateToken('kw_pat')), 'ops/s');
  record('parseToken (valid, checksum verified)', opsPerSecond(5, 100_000, () => parseToken(token, DEFAULT_TOKEN_PREFIXES)), 'ops/s');
  record('parseToken (one character changed: rejected)', opsPerSecond(5, 100_000, () => parseToken(garbage, DEFAULT_TOKEN_PREFIXES)), 'ops/s');
  record('hashToken (HMAC-SHA256)', opsPerSecond(5, 50_000, () => hashToken(keyring, token)), 'ops/s');
  const argonTimes: number[] = [];
  for (let i = 0; i < 10; i += 1) {
    const start = performance.now();
    await argon2Hasher.hash('benchmark password 123');
    argonTimes.push(performance.now() - start);
  }
  record('argon2id hash (19 MiB, t=2, p=1) median', median(argonTimes), 'ms');

  const dataDir = await mkdtemp(path.join(tmpdir(), 'keyward-bench-'));
  try {
    const sqlite = await openDatabase({ dataDir });
    await migrateToLatest(sqlite);
    await benchStorage('SQLite', sqlite);
    await sqlite.close();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }

  const postgresUrl = process.env.KEYWARD_BENCH_DATABASE_URL;
  if (postgresUrl) {
    const schema = `kw_bench_${randomBytes(4).toString('hex')}`;
    const postgres = await openDatabase({ databaseUrl: postgresUrl, dataDir: tmpdir(), searchPath: schema });
    await sql`create schema ${sql.id(schema)}`.execute(postgres.db);
    try {
      await migrateToLatest(postgres);
      await benchStorage('PostgreSQL', postgres);
    } finally {
      await sql`drop schema ${sql.id(schema)} cascade`.execute(postgres.db);
      await postgres.close();
    }
  }
}

async function main(): Promise<void> {
  const quick = process.env.KEYWARD_BENCH_QUICK === '1';
  const only = process.env.KEYWARD_BENCH_ONLY;
  const parts = ['management', 'verification', 'sdk', 'replicas'];
  if (only !== undefined && !parts.includes(only)) throw new Error(`KEYWARD_BENCH_ONLY must be one of ${parts.join(', ')}`);
  const settings = {
    quick,
    httpSeconds: positiveInteger('KEYWARD_BENCH_SECONDS', quick ? 3 : 10),
    storedTokens: positiveInteger('KEYWARD_BENCH_TOKENS', quick ? 100_000 : 1_000_000),
  };
  const started = performance.now();
  const log = (line: string) => console.error(line);
  if (only === undefined || only === 'management') await benchManagement();
  if (only === undefined || only === 'verification') await benchVerification(figures, { ...settings, log });
  if (only === undefined || only === 'sdk') await benchSdk(figures, { quick, httpSeconds: settings.httpSeconds, log });
  if (only === undefined || only === 'replicas') await benchReplicas(figures, { ...settings, log });

  const report = {
    node: process.version,
    fastify: Fastify().version,
    at: new Date().toISOString(),
    seconds: Math.round((performance.now() - started) / 1000),
    settings,
    figures: figures.all,
  };
  const reportFile = path.resolve(process.env.KEYWARD_BENCH_REPORT ?? 'bench-report.json');
  await writeFile(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
  console.log('');
  console.log(figures.table());
  console.log(`\nReport written to ${reportFile}`);
}

await main();
