// The SDK figures of issue 10: the @keyward/sdk verifier in-process on cache
// hits and misses against a real Keyward server, an Express and a Fastify
// route protected by the middleware against the same route unprotected (under
// autocannon), and how fast a revocation reaches a connected verifier through
// the event stream. Everything runs on 127.0.0.1 with SQLite in a temporary
// data dir, and stops by itself.
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import express from 'express';
import Fastify from 'fastify';
import { bootstrapOwner, newKeyringEntry, parseKeyring } from '@keyward/core';
import { buildApp, loadConfig, migrateToLatest, openDatabase, type Database } from '@keyward/server';
import type { App } from '../packages/server/src/http/app-types.ts';
import { createVerifier, type Verifier, type VerifierOptions } from '../packages/sdk/src/index.ts';
import * as expressSdk from '../packages/sdk/src/express.ts';
import * as fastifySdk from '../packages/sdk/src/fastify.ts';
import { asyncRates, median, percentile, type Figures } from './bench-figures.ts';
import type { LoadPlan } from './bench-load.ts';
import { measure, type Measured, type VerificationBenchOptions } from './bench-verification.ts';

export type SdkBenchOptions = Pick<VerificationBenchOptions, 'quick' | 'httpSeconds' | 'log'>;

const TOKENS = 1_000;
const CONNECTIONS = 32;
const REVOCATIONS = 100;
const SCOPES = ['scans:read'];
const PASSWORD = 'benchmark password 123';

interface Keyward {
  app: App;
  database: Database;
  dataDir: string;
  baseUrl: string;
  /** An owner bearer token that manages tokens. */
  admin: string;
  verifyToken: string;
}

async function startKeyward(): Promise<Keyward> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'keyward-bench-sdk-'));
  const database = await openDatabase({ dataDir });
  await migrateToLatest(database);
  // All the load comes from 127.0.0.1: the per-address limits would otherwise refuse the run.
  const config = loadConfig({ LOG_LEVEL: 'silent', KEYWARD_PASSWORD_FLOW_MAX: '1000000', KEYWARD_VERIFY_FAILURES_PER_IP: '1000000' }, tmpdir());
  const { app, context } = await buildApp({ config, database, keyring: parseKeyring(newKeyringEntry('v1')) });
  await bootstrapOwner(context.deps, { email: 'bench@example.com', password: PASSWORD, organizationName: 'Bench', organizationSlug: 'bench' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const created = await app.inject({
    method: 'POST',
    url: '/api/v1/tokens',
    payload: { name: 'bench-admin', email: 'bench@example.com', password: PASSWORD, scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'keyward:verify', ...SCOPES] },
  });
  const admin = (created.json() as { token: string }).token;
  const headers = { authorization: `Bearer ${admin}` };
  const client = await app.inject({ method: 'POST', url: '/api/v1/clients', headers, payload: { name: 'bench-resource-server' } });
  const issued = await app.inject({ method: 'POST', url: `/api/v1/clients/${(client.json() as { id: string }).id}/tokens`, headers, payload: { name: 'verifier', scopes: ['keyward:verify'] } });
  if (issued.statusCode !== 201) throw new Error(`could not issue the verify token: ${issued.statusCode} ${issued.body}`);
  return { app, database, dataDir, baseUrl, admin, verifyToken: (issued.json() as { token: string }).token };
}

async function stopKeyward(keyward: Keyward): Promise<void> {
  await keyward.app.close();
  await keyward.database.close();
  await rm(keyward.dataDir, { recursive: true, force: true });
}

/** Personal tokens of the owner holding `SCOPES`, made through the API with the admin's bearer token. */
async function createTokens(keyward: Keyward, label: string, count: number): Promise<Array<{ token: string; id: string }>> {
  const tokens: Array<{ token: string; id: string }> = [];
  for (let i = 0; i < count; i += 1) {
    const response = await keyward.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { authorization: `Bearer ${keyward.admin}` }, payload: { name: `${label}-${i}`, scopes: SCOPES } });
    if (response.statusCode !== 201) throw new Error(`could not create a token: ${response.statusCode} ${response.body}`);
    const { token, id } = response.json() as { token: string; id: string };
    tokens.push({ token, id });
  }
  return tokens;
}

/** The same GET /scans route on Express, protected or not. */
async function expressApp(verifier: Verifier | undefined): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  if (verifier) {
    app.use(expressSdk.keyward({ verifier }));
    app.get('/scans', expressSdk.requireScope('scans:read'), (req, res) => {
      res.json({ scans: [], tokenId: req.keyward?.id ?? null });
    });
  } else {
    app.get('/scans', (_req, res) => {
      res.json({ scans: [], tokenId: null });
    });
  }
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The same GET /scans route on Fastify, protected or not. */
async function fastifyApp(verifier: Verifier | undefined): Promise<{ url: string; close: () => Promise<void> }> {
  const app = Fastify({ logger: false });
  if (verifier) {
    await app.register(fastifySdk.keyward, { verifier });
    app.get('/scans', { preHandler: fastifySdk.requireScope('scans:read') }, async (request) => ({ scans: [], tokenId: request.keyward?.id ?? null }));
  } else {
    app.get('/scans', async () => ({ scans: [], tokenId: null }));
  }
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

interface Pair {
  unprotected: Measured;
  protected: Measured;
}

/**
 * Unprotected and protected runs alternate (each after a discarded second of
 * warm-up), and each figure is the better of its runs: on a shared machine a
 * single run mostly measures the neighbours.
 */
async function comparePair(start: (verifier: Verifier | undefined) => Promise<{ url: string; close: () => Promise<void> }>, verifier: Verifier, authorizations: string[], seconds: number, rounds: number): Promise<Pair & { runs: Pair[] }> {
  const open = await start(undefined);
  const guarded = await start(verifier);
  try {
    const plan = (url: string, durationSeconds: number): LoadPlan => ({ url, method: 'GET', path: '/scans', connections: CONNECTIONS, durationSeconds, headers: {}, variants: authorizations, vary: 'authorization' });
    const runs: Pair[] = [];
    for (let round = 0; round < rounds; round += 1) {
      runs.push({ unprotected: await measure(plan(open.url, seconds), 1), protected: await measure(plan(guarded.url, seconds), 1) });
    }
    const best = (pick: (pair: Pair) => Measured) => runs.map(pick).reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
    return { unprotected: best((pair) => pair.unprotected), protected: best((pair) => pair.protected), runs };
  } finally {
    await open.close();
    await guarded.close();
  }
}

function recordPair(figures: Figures, framework: string, pair: Pair & { runs: Pair[] }, seconds: number, askedKeyward: number): void {
  const details = (result: Measured) => ({
    connections: CONNECTIONS,
    seconds,
    requests: result.requests,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    statusCodes: result.statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    serverCpuMicrosPerRequest: result.serverCpuMicrosPerRequest,
  });
  const ok = pair.protected.statusCodes['200'] ?? 0;
  if (ok !== pair.protected.requests) throw new Error(`the protected ${framework} route refused requests: ${JSON.stringify(pair.protected.statusCodes)}`);
  figures.record(`${framework} GET /scans unprotected`, pair.unprotected.requestsPerSecond, 'req/s', { details: details(pair.unprotected) });
  figures.record(`${framework} GET /scans behind keyward() + requireScope()`, pair.protected.requestsPerSecond, 'req/s', { details: details(pair.protected) });
  figures.record(`${framework} protected p99`, pair.protected.p99Ms, 'ms', { details: { unprotectedP99Ms: pair.unprotected.p99Ms } });
  figures.record(`${framework} protected / unprotected`, pair.protected.requestsPerSecond / pair.unprotected.requestsPerSecond, 'ratio', {
    target: { op: '>=', value: 0.85 },
    details: {
      note: 'best run of each, runs alternating; requests present the bench tokens in turn, answered from the cache',
      askedKeyward,
      runs: pair.runs.map((run) => ({ unprotected: Math.round(run.unprotected.requestsPerSecond), protected: Math.round(run.protected.requestsPerSecond) })),
    },
  });
  // The same comparison in the app's CPU per request (median of the runs): what the ratio would be
  // with the cores to itself, and far steadier than req/s while other processes take them.
  const cpu = (pick: (pair: Pair) => Measured) => median(pair.runs.map((run) => pick(run).serverCpuMicrosPerRequest));
  const unprotectedCpu = cpu((run) => run.unprotected);
  const protectedCpu = cpu((run) => run.protected);
  figures.record(`${framework} app CPU per request: unprotected`, unprotectedCpu, 'µs');
  figures.record(`${framework} app CPU per request: protected`, protectedCpu, 'µs');
  figures.record(`${framework} unprotected / protected, in app CPU per request`, unprotectedCpu / protectedCpu, 'ratio', { target: { op: '>=', value: 0.85 } });
}

/** Revokes each token over HTTP and times until the verifier, polled between I/O turns, answers REVOKED. */
async function revocationTimes(keyward: Keyward, verifier: Verifier, tokens: Array<{ token: string; id: string }>): Promise<number[]> {
  const times: number[] = [];
  for (const { token, id } of tokens) {
    const before = await verifier.verify(token, { scopes: SCOPES });
    if (before.code !== 'VALID') throw new Error(`a revocation bench token did not verify: ${before.code}`);
    const started = performance.now();
    const revoked = await fetch(`${keyward.baseUrl}/api/v1/tokens/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${keyward.admin}` } });
    if (revoked.status !== 204) throw new Error(`revoking failed: ${revoked.status} ${await revoked.text()}`);
    for (;;) {
      if ((await verifier.verify(token, { scopes: SCOPES })).code === 'REVOKED') break;
      if (performance.now() - started > 30_000) throw new Error('a revocation did not reach the verifier within 30 s');
      await nextTurn();
    }
    times.push(performance.now() - started);
  }
  return times;
}

export async function benchSdk(figures: Figures, options: SdkBenchOptions): Promise<void> {
  const { quick, log } = options;
  log('sdk: a Keyward server on SQLite, tokens made through the API');
  const keyward = await startKeyward();
  const verifiers: Verifier[] = [];
  // Counts what the verifiers ask Keyward, so a figure meant to be all cache hits can show it was.
  let asked = 0;
  const counting: typeof fetch = (input, init) => {
    if (String(input).endsWith('/api/v1/verify')) asked++;
    return fetch(input, init);
  };
  const open = (cache: VerifierOptions['cache'] = {}) => {
    const verifier = createVerifier({ baseUrl: keyward.baseUrl, token: keyward.verifyToken, fetch: counting, cache });
    verifiers.push(verifier);
    return verifier;
  };
  try {
    const tokens = await createTokens(keyward, 'sdk-bench', quick ? 200 : TOKENS);
    const plaintexts = tokens.map(({ token }) => token);
    const question = { scopes: SCOPES };

    // 1. In-process: one pass fills the cache, then every call is a hit.
    const verifier = open();
    await verifier.whenStreamOpen();
    for (const token of plaintexts) {
      const answer = await verifier.verify(token, question);
      if (answer.code !== 'VALID') throw new Error(`the bench tokens do not verify: ${answer.code}`);
    }
    const hitRounds = quick ? 3 : 7;
    const hitPerRound = quick ? 50_000 : 200_000;
    const hits = await asyncRates(hitRounds, hitPerRound, (i) => verifier.verify(plaintexts[i % plaintexts.length] as string, question));
    figures.record('@keyward/sdk verifier.verify, cache hit (in-process, median of rounds)', median(hits), 'ops/s', {
      target: { op: '>=', value: 400_000 },
      details: { rounds: hitRounds, perRound: hitPerRound, rates: hits.map(Math.round), tokens: plaintexts.length },
    });

    // A verifier without a cache: every call is POST /api/v1/verify over HTTP to the server in this process.
    const uncached = open(false);
    const missRounds = quick ? 3 : 5;
    const missPerRound = quick ? 300 : 1_000;
    const misses = await asyncRates(missRounds, missPerRound, (i) => uncached.verify(plaintexts[i % plaintexts.length] as string, question));
    figures.record('@keyward/sdk verifier.verify, cache miss (POST /api/v1/verify over HTTP, sequential)', median(misses), 'ops/s', {
      details: { rounds: missRounds, perRound: missPerRound, rates: misses.map(Math.round), note: 'the server runs in the same process, so its CPU is in the figure; its own cache is warm' },
    });

    // 2. Protected routes against the same routes unprotected. Keyward runs in this thread too, so a
    // miss would put its work in the app's figures: a 10-minute TTL keeps the runs on cache hits
    // (the warm-up of the first run asks once per token; misses are the figure above).
    const routeVerifier = open({ ttlMs: 600_000 });
    await routeVerifier.whenStreamOpen();
    const authorizations = plaintexts.map((token) => `Bearer ${token}`);
    const rounds = quick ? 2 : 3;
    for (const [framework, start] of [
      ['Express', expressApp],
      ['Fastify', fastifyApp],
    ] as const) {
      log(`sdk: ${framework}, unprotected vs protected (autocannon)`);
      const askedBefore = asked;
      const pair = await comparePair(start, routeVerifier, authorizations, options.httpSeconds, rounds);
      recordPair(figures, framework, pair, options.httpSeconds, asked - askedBefore);
    }

    // 3. Revocation propagation through GET /api/v1/events.
    log(`sdk: ${REVOCATIONS} revocations to a connected verifier`);
    const doomed = await createTokens(keyward, 'sdk-bench-revoked', REVOCATIONS);
    const times = await revocationTimes(keyward, verifier, doomed);
    const revocationDetails = { revocations: times.length, maxMs: Math.max(...times), note: 'from sending DELETE /api/v1/tokens/:id to the verifier answering REVOKED (server and verifier on 127.0.0.1)' };
    figures.record('revocation reaches a connected verifier, p50', percentile(times, 50), 'ms', { target: { op: '<=', value: 1000 }, details: revocationDetails });
    figures.record('revocation reaches a connected verifier, p99', percentile(times, 99), 'ms', { target: { op: '<=', value: 1000 }, details: revocationDetails });
  } finally {
    for (const verifier of verifiers) await verifier.close();
    await stopKeyward(keyward);
  }
}
