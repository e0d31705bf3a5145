// The verification figures of issue 9 (SPEC §4): the in-process verifier on
// cache hits and misses, POST /api/v1/verify and GET /api/v1/authz under
// autocannon against a bare Fastify ceiling, database writes per 10,000
// verifications, miss latency with a million stored tokens, and the memory of
// 100,000 cached tokens. Everything runs on SQLite in temporary data dirs and
// on 127.0.0.1 only, and stops by itself.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { DEFAULT_TOKEN_PREFIXES, bootstrapOwner, generateToken, hashToken, newId, newKeyringEntry, parseKeyring, tokenHint, type Keyring } from '@keyward/core';
import { buildApp, loadConfig, migrateToLatest, openDatabase, type Database } from '@keyward/server';
// Internal, not part of the server's public surface: the bench writes rows the way the store does.
import { tokenToRow } from '../packages/server/src/storage/token-rows.ts';
import { SERVER_NODE_FLAGS } from '../packages/cli/src/node-flags.ts';
import type { App, AppContext } from '../packages/server/src/http/app-types.ts';
import { newTokenFixture } from '../packages/server/src/testing/token-fixture.ts';
import type { VerifyContext, VerifyInput } from '../packages/server/src/verification/verifier.ts';
import { asyncRates, median, type Figures } from './bench-figures.ts';
import type { LoadPlan, LoadResult } from './bench-load.ts';
import type { MemoryReport } from './bench-memory.ts';
import type { MissLatencyPlan, MissLatencyReport, MissLatencySide } from './bench-miss-latency.ts';

export interface VerificationBenchOptions {
  /** KEYWARD_BENCH_QUICK=1: fewer rounds and rows, shorter runs, for development. */
  quick: boolean;
  /** Length of each measured HTTP run (KEYWARD_BENCH_SECONDS). */
  httpSeconds: number;
  /** Stored tokens for the large-table latency figure (KEYWARD_BENCH_TOKENS). */
  storedTokens: number;
  log: (line: string) => void;
}

const HTTP_TOKENS = 10_000;
/** Well-formed unknown tokens mixed into the HTTP runs: 5 % of the valid ones. */
const UNKNOWN_TOKENS = 500;
const CONNECTIONS = 32;
const MEMORY_TOKENS = 100_000;
/** Untimed misses a side before the miss latency is measured, in a process that starts cold. */
const MISS_WARM_TOKENS = 5_000;
/** 500 rows of 28 columns: 14,000 parameters, under SQLite's 32,766 per statement. */
const ROWS_PER_INSERT = 500;
/** Commits every 50,000 rows, so the WAL is checkpointed along the way rather than growing to the whole table. */
const ROWS_PER_TRANSACTION = 50_000;
const SCOPES = ['scans:read', 'clearances:read'];
export const QUESTION_SCOPES = ['scans:read'];
const MB = 1_000_000;
const run = promisify(execFile);

/** Counts the statements that change data, by kind, on the database the app is given. */
class WriteCounter implements KyselyPlugin {
  counts = { insert: 0, update: 0, delete: 0 };
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (args.node.kind === 'InsertQueryNode') this.counts.insert++;
    else if (args.node.kind === 'UpdateQueryNode') this.counts.update++;
    else if (args.node.kind === 'DeleteQueryNode') this.counts.delete++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
  get total(): number {
    return this.counts.insert + this.counts.update + this.counts.delete;
  }
  reset(): void {
    this.counts = { insert: 0, update: 0, delete: 0 };
  }
}

export interface Instance {
  dataDir: string;
  /** Unwrapped: the bench's own inserts are not counted as the app's writes. */
  database: Database;
  app: App;
  context: AppContext;
  organizationId: string;
  userId: string;
  counter: WriteCounter;
}

const PASSWORD = 'benchmark password 123';

export async function openInstance(keyring: Keyring, label: string): Promise<Instance> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `keyward-bench-${label}-`));
  const database = await openDatabase({ dataDir });
  await migrateToLatest(database);
  const counter = new WriteCounter();
  const config = loadConfig(
    {
      LOG_LEVEL: 'silent',
      KEYWARD_PASSWORD_FLOW_MAX: '1000000',
      // All the load comes from 127.0.0.1, and 5 % of it is unknown tokens: the
      // per-address failure limit (100 a minute) would otherwise refuse the run after a second.
      KEYWARD_VERIFY_FAILURES_PER_IP: '1000000',
    },
    tmpdir(),
  );
  const { app, context } = await buildApp({ config, database: { ...database, db: database.db.withPlugin(counter) }, keyring });
  await app.ready();
  const { user, organization } = await bootstrapOwner(context.deps, { email: 'bench@example.com', password: PASSWORD, organizationName: 'Bench', organizationSlug: 'bench' });
  return { dataDir, database, app, context, organizationId: organization.id, userId: user.id, counter };
}

/** Closes the app and its database; the data dir stays (the caller removes it). */
async function stopInstance(instance: Instance): Promise<void> {
  await instance.app.close();
  await instance.database.close();
}

/**
 * Inserts `count` personal tokens of the instance's owner straight into the
 * table, in multi-row statements; `keep` sees each plaintext as it is made.
 */
export async function insertTokens(instance: Instance, keyring: Keyring, count: number, keep: (index: number, plaintext: string) => void): Promise<number> {
  const started = performance.now();
  const now = new Date();
  const expiresAt = new Date(now.getTime() + 90 * 86_400_000);
  for (let first = 0; first < count; first += ROWS_PER_TRANSACTION) {
    const last = Math.min(count, first + ROWS_PER_TRANSACTION);
    await instance.database.db.transaction().execute(async (trx) => {
      for (let start = first; start < last; start += ROWS_PER_INSERT) {
        const rows = [];
        for (let index = start; index < Math.min(last, start + ROWS_PER_INSERT); index += 1) {
          const plaintext = generateToken(DEFAULT_TOKEN_PREFIXES.personal);
          keep(index, plaintext);
          const { digest, version } = hashToken(keyring, plaintext);
          const token = newTokenFixture(
            newId('tok'),
            { organizationId: instance.organizationId, userId: instance.userId, createdAt: now },
            { name: `bench-${index}`, hint: tokenHint(plaintext), digest, secretVersion: version, scopes: SCOPES, permission: 'owner', expiresAt },
          );
          rows.push(tokenToRow(token));
        }
        await trx.insertInto('tokens').values(rows).execute();
      }
    });
  }
  return (performance.now() - started) / 1000;
}

/** A client token with keyward:verify, made the way an administrator would, for POST /api/v1/verify. */
export async function issueVerifyToken(instance: Instance): Promise<string> {
  const { app } = instance;
  const admin = await app.inject({
    method: 'POST',
    url: '/api/v1/tokens',
    payload: { name: 'bench-admin', email: 'bench@example.com', password: PASSWORD, scopes: ['clients:manage', 'keyward:verify'] },
  });
  const adminToken = (admin.json() as { token: string }).token;
  const headers = { authorization: `Bearer ${adminToken}` };
  const client = await app.inject({ method: 'POST', url: '/api/v1/clients', headers, payload: { name: 'bench-gateway' } });
  const clientId = (client.json() as { id: string }).id;
  const issued = await app.inject({ method: 'POST', url: `/api/v1/clients/${clientId}/tokens`, headers, payload: { name: 'verifier', scopes: ['keyward:verify'] } });
  if (issued.statusCode !== 201) throw new Error(`could not issue the verify token: ${issued.statusCode} ${issued.body}`);
  return (issued.json() as { token: string }).token;
}

/** Runs one autocannon plan in a worker thread (scripts/bench-load.ts). */
export function load(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./bench-load.ts', import.meta.url), { workerData: plan });
    worker.once('message', (result: LoadResult) => resolve(result));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the load worker exited with ${code}`));
    });
  });
}

export interface Measured extends LoadResult {
  /**
   * CPU time of this (the server's) thread per answered request. The servers
   * run here and autocannon in a worker, so this is the server's cost alone,
   * and it moves far less than req/s when other processes take the cores.
   */
  serverCpuMicrosPerRequest: number;
  /** The same, split into user and kernel (system) time: a response's socket write, and the wake-up of the reader it answers, are kernel time. */
  serverCpuSplit: { userMicros: number; systemMicros: number };
  /** How late this thread's event loop ran during the run (p99 and worst, ms): stalls show here first. */
  eventLoopDelay: { p99Ms: number; maxMs: number };
  /** Garbage collection on this thread during the run: pauses, their total and the longest (ms). */
  gc: { pauses: number; totalMs: number; longestMs: number };
}

/** A short discarded run first (code compiled, connections open), then the measured one; also used by bench-sdk.ts. */
export async function measure(plan: LoadPlan, warmSeconds: number): Promise<Measured> {
  await load({ ...plan, durationSeconds: warmSeconds });
  const profiler = await startCpuProfile();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  const gc = { pauses: 0, totalMs: 0, longestMs: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.pauses += 1;
      gc.totalMs += entry.duration;
      gc.longestMs = Math.max(gc.longestMs, entry.duration);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  loopDelay.enable();
  const cpuBefore = process.threadCpuUsage();
  const result = await load(plan);
  const cpu = process.threadCpuUsage(cpuBefore);
  loopDelay.disable();
  gcObserver.disconnect();
  await profiler?.stop(`${plan.method}-${new URL(plan.url).port}-${plan.path.split('?')[0]!.replaceAll('/', '_')}`);
  const requests = Math.max(1, result.requests);
  return {
    ...result,
    serverCpuMicrosPerRequest: (cpu.user + cpu.system) / requests,
    serverCpuSplit: { userMicros: cpu.user / requests, systemMicros: cpu.system / requests },
    eventLoopDelay: { p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6 },
    gc: { ...gc, totalMs: Math.round(gc.totalMs), longestMs: Math.round(gc.longestMs * 10) / 10 },
  };
}

/**
 * With KEYWARD_BENCH_CPU_PROFILE=<dir>, each measured HTTP run writes a
 * .cpuprofile of this (the server's) thread there, to open in Chrome DevTools
 * or speedscope: where a request's time goes, without the warm-up.
 */
async function startCpuProfile(): Promise<{ stop(name: string): Promise<void> } | null> {
  const dir = process.env.KEYWARD_BENCH_CPU_PROFILE;
  if (!dir) return null;
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  return {
    async stop(name) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      session.disconnect();
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    },
  };
}

function urlOf(app: { server: { address(): unknown } }): string {
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Unknown tokens spread evenly through the valid ones. */
export function mix(valid: readonly string[], unknown: readonly string[]): string[] {
  const mixed: string[] = [];
  const every = Math.floor(valid.length / unknown.length);
  let next = 0;
  valid.forEach((token, index) => {
    mixed.push(token);
    if ((index + 1) % every === 0 && next < unknown.length) mixed.push(unknown[next++] as string);
  });
  return mixed;
}

/** Process CPU time (all threads, GC included) per operation since `before`. */
function cpuMicrosPerOp(before: NodeJS.CpuUsage, operations: number): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / Math.max(1, operations);
}

function loadDetails(result: Measured): Record<string, unknown> {
  return {
    requests: result.requests,
    seconds: result.durationSeconds,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    statusCodes: result.statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    serverCpuMicrosPerRequest: result.serverCpuMicrosPerRequest,
    serverCpuSplit: result.serverCpuSplit,
    eventLoopDelay: result.eventLoopDelay,
    gc: result.gc,
  };
}

export type HttpTarget = 'bare' | 'verify' | 'authz';
const HTTP_TARGETS: readonly HttpTarget[] = ['bare', 'verify', 'authz'];

/** A profiling script's positive number setting from the environment. */
export function profileSetting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

/** The HTTP targets a profiling script runs: KEYWARD_PROFILE_TARGETS, or all three. */
export function profileTargets(): HttpTarget[] {
  const targets = (process.env.KEYWARD_PROFILE_TARGETS ?? HTTP_TARGETS.join(',')).split(',') as HttpTarget[];
  for (const target of targets) if (!HTTP_TARGETS.includes(target)) throw new Error(`unknown target ${target}: use ${HTTP_TARGETS.join(', ')}`);
  return targets;
}

/**
 * The HTTP setting of the verification figures, shared with
 * scripts/profile-verification-http.ts: Keyward listening on 127.0.0.1, a bare
 * Fastify route beside it, and an autocannon plan for each of the three, each
 * request presenting the next of `tokens` (the caller is a keyward:verify
 * client token issued here).
 */
export async function startHttpTargets(instance: Instance, tokens: readonly string[], run: { connections: number; durationSeconds: number }): Promise<{ plans: Record<HttpTarget, LoadPlan>; close(): Promise<void> }> {
  const callerToken = await issueVerifyToken(instance);
  await instance.app.listen({ host: '127.0.0.1', port: 0 });
  const sample = await instance.app.inject({ method: 'POST', url: '/api/v1/verify', headers: { authorization: `Bearer ${callerToken}` }, payload: { token: tokens[0], scopes: QUESTION_SCOPES } });
  const answer: unknown = sample.json();
  const bare = Fastify({ logger: false });
  // Parses the same JSON body and answers a real answer's bytes, with none of Keyward's hooks or work.
  bare.post('/api/v1/verify', async (request) => (request.body ? answer : null));
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${callerToken}` };
  const bodies = tokens.map((token) => JSON.stringify({ token, scopes: QUESTION_SCOPES }));
  const keywardUrl = urlOf(instance.app);
  return {
    plans: {
      bare: { ...run, url: urlOf(bare), method: 'POST', path: '/api/v1/verify', headers, variants: bodies, vary: 'body' },
      verify: { ...run, url: keywardUrl, method: 'POST', path: '/api/v1/verify', headers, variants: bodies, vary: 'body' },
      authz: { ...run, url: keywardUrl, method: 'GET', path: `/api/v1/authz?scopes=${QUESTION_SCOPES.join(',')}`, headers: {}, variants: tokens.map((token) => `Bearer ${token}`), vary: 'authorization' },
    },
    close: () => bare.close(),
  };
}

/**
 * The profiling scripts' setting: an instance with 10,000 tokens plus 500
 * unknown ones, all of them cached, the HTTP targets listening, and `targets`
 * warmed up (code compiled, connections made) before anything is measured.
 */
export async function openHttpProfile(label: string, targets: readonly HttpTarget[], seconds: number): Promise<{ plans: Record<HttpTarget, LoadPlan>; close(): Promise<void> }> {
  const keyring = parseKeyring(newKeyringEntry('v1'));
  const instance = await openInstance(keyring, label);
  let http: Awaited<ReturnType<typeof startHttpTargets>> | null = null;
  const close = async () => {
    await http?.close();
    await instance.app.close();
    await instance.database.close();
    await rm(instance.dataDir, { recursive: true, force: true });
  };
  try {
    const valid: string[] = [];
    await insertTokens(instance, keyring, 10_000, (_index, plaintext) => valid.push(plaintext));
    const tokens = mix(valid, Array.from({ length: 500 }, () => generateToken(DEFAULT_TOKEN_PREFIXES.personal)));
    const question = { scopes: QUESTION_SCOPES, organizationId: instance.organizationId };
    const context: VerifyContext = { entryPoint: 'verify', spendQuota: true };
    for (const token of tokens) await instance.context.verifier.verify(token, question, context);
    http = await startHttpTargets(instance, tokens, { connections: 32, durationSeconds: seconds });
    for (const target of targets) await load({ ...http.plans[target], durationSeconds: 1 });
    return { plans: http.plans, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export async function benchVerification(figures: Figures, options: VerificationBenchOptions): Promise<void> {
  const { quick, log } = options;
  const secrets = newKeyringEntry('v1');
  const keyring = parseKeyring(secrets);
  const verifyContext: VerifyContext = { entryPoint: 'verify', spendQuota: true };

  log('verification: 10,000 tokens on SQLite');
  let small: Instance | null = await openInstance(keyring, 'small');
  let large: Instance | null = null;
  // Removed at the end whatever happens; the miss-latency and memory processes open them after the apps closed.
  const dataDirs = [small.dataDir];
  try {
    const valid: string[] = [];
    const insertSeconds = await insertTokens(small, keyring, HTTP_TOKENS, (_index, plaintext) => valid.push(plaintext));
    const unknown = Array.from({ length: UNKNOWN_TOKENS }, () => generateToken(DEFAULT_TOKEN_PREFIXES.personal));
    const { verifier, usage } = small.context;
    const input: VerifyInput = { scopes: QUESTION_SCOPES, organizationId: small.organizationId };

    // 1. In-process: one pass fills the cache; then every call is a hit.
    const codes: Record<string, number> = {};
    for (const token of valid) {
      const { result } = await verifier.verify(token, input, verifyContext);
      codes[result.code] = (codes[result.code] ?? 0) + 1;
    }
    if (codes.VALID !== HTTP_TOKENS) throw new Error(`the bench tokens do not verify: ${JSON.stringify(codes)}`);
    const hitRounds = quick ? 3 : 7;
    const hitPerRound = quick ? 20_000 : 100_000;
    let cpuBefore = process.cpuUsage();
    const hits = await asyncRates(hitRounds, hitPerRound, (i) => verifier.verify(valid[i % valid.length] as string, input, verifyContext));
    const hitCpu = cpuMicrosPerOp(cpuBefore, hitRounds * hitPerRound);
    figures.record('verifier.verify, cache hit (in-process, median of rounds)', median(hits), 'ops/s', {
      target: { op: '>=', value: 400_000 },
      details: { rounds: hitRounds, perRound: hitPerRound, rates: hits.map(Math.round), tokens: valid.length, cpuMicrosPerOp: hitCpu },
    });
    // CPU time moves far less than the rate when other processes take the cores.
    figures.record('verifier.verify, cache hit: process CPU per call', hitCpu, 'µs');

    // Each round starts from an empty cache and asks for distinct tokens: every call reads the database.
    // The hits above left ~10,000 usage counters and last uses to write; written now, so a timed
    // flush of the hits' counts does not land inside a round of misses (their own counts still do).
    await verifier.flush();
    await usage.flush();
    const missRounds = quick ? 3 : 7;
    const missPerRound = quick ? 1_000 : 5_000;
    cpuBefore = process.cpuUsage();
    const misses = await asyncRates(
      missRounds,
      missPerRound,
      (i) => verifier.verify(valid[i % valid.length] as string, input, verifyContext),
      () => verifier.reset(),
    );
    const missCpu = cpuMicrosPerOp(cpuBefore, missRounds * missPerRound);
    figures.record('verifier.verify, cache miss on SQLite (in-process, median of rounds)', median(misses), 'ops/s', {
      target: { op: '>=', value: 20_000 },
      details: {
        rounds: missRounds,
        perRound: missPerRound,
        rates: misses.map(Math.round),
        storedTokens: HTTP_TOKENS,
        cpuMicrosPerOp: missCpu,
        note: 'verifier.reset() before each round; each round verifies distinct tokens sequentially',
      },
    });
    figures.record('verifier.verify, cache miss on SQLite: process CPU per call', missCpu, 'µs');

    // 3. Writes: 10,000 verifications over 1,000 tokens (10 uses each), inside one last-use interval, buffers flushed.
    await verifier.flush();
    await usage.flush();
    small.counter.reset();
    const writeTokens = 1_000;
    const writesStarted = performance.now();
    for (let i = 0; i < 10_000; i += 1) await verifier.verify(valid[i % writeTokens] as string, input, verifyContext);
    await verifier.flush();
    await usage.flush();
    const writeSeconds = (performance.now() - writesStarted) / 1000;
    const writes = small.counter.total;
    const writeCounts = { ...small.counter.counts };
    // Each token's last use is written at most once per interval (60 s), so a run shorter than that is one interval.
    const minutes = Math.max(1, Math.ceil(writeSeconds / 60));
    figures.record('database writes per 10,000 verifications (1,000 tokens, buffers flushed)', writes, 'statements', {
      details: { ...writeCounts, seconds: writeSeconds, note: "updates = last-use writes (one statement per 1,000 tokens); inserts = batched usage-counter upserts" },
    });
    figures.record('database writes per token per minute', writes / writeTokens / minutes, 'writes', {
      target: { op: '<=', value: 1 },
      details: { writes, tokens: writeTokens, minutes },
    });

    // 2. HTTP through autocannon, against Keyward and a bare Fastify ceiling.
    log('verification: HTTP (autocannon)');
    const tokens = mix(valid, unknown);
    // Warm: one pass fills the cache (and the negative cache for the unknown tokens).
    for (const token of tokens) await verifier.verify(token, input, verifyContext);
    const seconds = options.httpSeconds;
    const warmSeconds = quick ? 1 : 2;
    const targets = await startHttpTargets(small, tokens, { connections: CONNECTIONS, durationSeconds: seconds });
    const { bare: barePlan, verify: verifyPlan, authz: authzPlan } = targets.plans;
    // The machine's speed drifts by up to 2x within a minute, so one run of each
    // would compare the three at different speeds. They run in rounds, each round
    // the three back to back, and every ratio is taken within a round; the
    // figures below are those of the round with the median ratio. Five rounds:
    // with three, one slow minute of the machine's decided the median.
    const httpRounds = quick ? 1 : 5;
    const rounds: { ceiling: Measured; verify: Measured; authz: Measured; fastPathAnswered: number }[] = [];
    try {
      for (let round = 0; round < httpRounds; round += 1) {
        const ceilingRun = await measure(barePlan, warmSeconds);
        const answeredBefore = small.context.verifyFastPath?.answered ?? 0;
        const verifyRun = await measure(verifyPlan, warmSeconds);
        // Requests the fast path answered (warm-up included), against the requests measured: it answers them all.
        const fastPathAnswered = (small.context.verifyFastPath?.answered ?? 0) - answeredBefore;
        const authzRun = await measure(authzPlan, warmSeconds);
        rounds.push({ ceiling: ceilingRun, verify: verifyRun, authz: authzRun, fastPathAnswered });
        log(`verification: HTTP round ${round + 1}/${httpRounds}: bare ${Math.round(ceilingRun.requestsPerSecond)}, verify ${Math.round(verifyRun.requestsPerSecond)}, authz ${Math.round(authzRun.requestsPerSecond)} req/s`);
      }
    } finally {
      await targets.close();
    }
    const verifyRatios = rounds.map((round) => round.verify.requestsPerSecond / round.ceiling.requestsPerSecond);
    const authzRatios = rounds.map((round) => round.authz.requestsPerSecond / round.ceiling.requestsPerSecond);
    const medianRound = (ratios: number[]) => rounds[ratios.indexOf(median(ratios))]!;
    const { ceiling, verify: verifyLoad, fastPathAnswered } = medianRound(verifyRatios);
    const { ceiling: authzCeiling, authz: authzLoad } = medianRound(authzRatios);
    const roundFigures = rounds.map((round, index) => ({
      bare: Math.round(round.ceiling.requestsPerSecond),
      verify: Math.round(round.verify.requestsPerSecond),
      authz: Math.round(round.authz.requestsPerSecond),
      verifyRatio: Number(verifyRatios[index]!.toFixed(3)),
      authzRatio: Number(authzRatios[index]!.toFixed(3)),
      verifyP99Ms: round.verify.p99Ms,
      authzP99Ms: round.authz.p99Ms,
      cpuMicros: { bare: round.ceiling.serverCpuMicrosPerRequest, verify: round.verify.serverCpuMicrosPerRequest, authz: round.authz.serverCpuMicrosPerRequest },
      cpuSplit: { bare: round.ceiling.serverCpuSplit, verify: round.verify.serverCpuSplit, authz: round.authz.serverCpuSplit },
    }));
    const httpSetting = { connections: CONNECTIONS, seconds, tokens: valid.length, unknownTokens: unknown.length };
    figures.record('bare Fastify POST (JSON body, constant answer): the ceiling', ceiling.requestsPerSecond, 'req/s', { details: { ...httpSetting, ...loadDetails(ceiling) } });
    figures.record('bare Fastify POST p50', ceiling.p50Ms, 'ms');
    figures.record('bare Fastify POST p99', ceiling.p99Ms, 'ms');
    figures.record('POST /api/v1/verify over HTTP', verifyLoad.requestsPerSecond, 'req/s', { details: { ...httpSetting, ...loadDetails(verifyLoad), fastPathAnswered } });
    figures.record('POST /api/v1/verify p50', verifyLoad.p50Ms, 'ms');
    figures.record('POST /api/v1/verify p99', verifyLoad.p99Ms, 'ms', { target: { op: '<=', value: 10 } });
    figures.record('POST /api/v1/verify / bare Fastify (median of rounds)', median(verifyRatios), 'ratio', { target: { op: '>=', value: 0.8 }, details: { rounds: roundFigures } });
    figures.record('GET /api/v1/authz over HTTP', authzLoad.requestsPerSecond, 'req/s', { details: { ...httpSetting, ...loadDetails(authzLoad) } });
    figures.record('GET /api/v1/authz p50', authzLoad.p50Ms, 'ms');
    figures.record('GET /api/v1/authz p99', authzLoad.p99Ms, 'ms', { target: { op: '<=', value: 10 } });
    figures.record('GET /api/v1/authz / bare Fastify (median of rounds)', median(authzRatios), 'ratio', { target: { op: '>=', value: 0.8 }, details: { ratios: authzRatios, ceilingOfItsRound: authzCeiling.requestsPerSecond } });
    // The same comparison in server CPU per request: what the ratios would be if the server had its cores to itself.
    figures.record('server CPU per request: bare Fastify', ceiling.serverCpuMicrosPerRequest, 'µs');
    figures.record('server CPU per request: POST /api/v1/verify', verifyLoad.serverCpuMicrosPerRequest, 'µs');
    figures.record('server CPU per request: GET /api/v1/authz', authzLoad.serverCpuMicrosPerRequest, 'µs');
    // Where the tail comes from: a request waits as long as the loop stalls (a synchronous write, a GC pause).
    figures.record('server event-loop delay p99 / max during POST /api/v1/verify', verifyLoad.eventLoopDelay.p99Ms, 'ms', { details: { maxMs: verifyLoad.eventLoopDelay.maxMs, gc: verifyLoad.gc } });
    figures.record('server GC during POST /api/v1/verify: total / longest pause', verifyLoad.gc.totalMs, 'ms', { details: verifyLoad.gc });
    figures.record('bare / verify, in server CPU per request', ceiling.serverCpuMicrosPerRequest / verifyLoad.serverCpuMicrosPerRequest, 'ratio');
    figures.record('bare / authz, in server CPU per request', authzCeiling.serverCpuMicrosPerRequest / authzLoad.serverCpuMicrosPerRequest, 'ratio');

    // 4. Miss latency with many stored tokens against 10,000: distinct tokens, every one a database read.
    log(`verification: inserting ${options.storedTokens.toLocaleString('en-US')} tokens`);
    large = await openInstance(keyring, 'large');
    dataDirs.push(large.dataDir);
    const latencyRounds = quick ? 3 : 10;
    const latencyPerRound = quick ? 500 : 2_000;
    const sampleSize = latencyRounds * latencyPerRound;
    // 5,000 more, spread the same way, warm the fresh process's code path without being measured, in
    // quick runs too: with a few hundred, the quick run's p99 caught the JIT at work (a ratio of 6).
    const warmSize = MISS_WARM_TOKENS;
    const stride = Math.max(1, Math.floor(options.storedTokens / (sampleSize + warmSize)));
    const largeSide: MissLatencySide = { dataDir: large.dataDir, organizationId: large.organizationId, sample: [], warm: [] };
    const memoryTokens: string[] = [];
    const largeInsertSeconds = await insertTokens(large, keyring, options.storedTokens, (index, plaintext) => {
      if (index % stride === 0) {
        // Kept tokens go to the two lists in proportion to their sizes, so both spread through the table.
        const { warm, sample } = largeSide;
        const warmFull = warm.length >= warmSize;
        const sampleFull = sample.length >= sampleSize;
        if (!warmFull && (sampleFull || warm.length * sampleSize < sample.length * warmSize)) warm.push(plaintext);
        else if (!sampleFull) sample.push(plaintext);
      }
      if (index < MEMORY_TOKENS) memoryTokens.push(plaintext);
    });
    log(`verification: inserted in ${largeInsertSeconds.toFixed(1)} s; miss latency (a fresh process)`);
    // Closed, so both files are checkpointed and the measuring process opens them as a restarted server would.
    const smallSide: MissLatencySide = { dataDir: small.dataDir, organizationId: small.organizationId, sample: valid, warm: valid.slice(0, warmSize) };
    await stopInstance(small);
    small = null;
    await stopInstance(large);
    large = null;
    const missPlan: MissLatencyPlan = { secrets, scopes: QUESTION_SCOPES, rounds: latencyRounds, perRound: latencyPerRound, small: smallSide, large: largeSide };
    const missPlanFile = path.join(largeSide.dataDir, 'bench-miss-plan.json');
    await writeFile(missPlanFile, JSON.stringify(missPlan));
    const missScript = new URL('./bench-miss-latency.ts', import.meta.url).pathname;
    const missRun = await run(process.execPath, [...SERVER_NODE_FLAGS, missScript], { env: { ...process.env, KEYWARD_BENCH_MISS_PLAN: missPlanFile }, maxBuffer: 1024 * 1024 });
    await rm(smallSide.dataDir, { recursive: true, force: true });
    const latency = JSON.parse(missRun.stdout.trim().split('\n').at(-1) ?? '{}') as MissLatencyReport;
    if (latency.codes.VALID !== latency.small.samples + latency.large.samples) throw new Error(`the miss-latency tokens do not all verify: ${JSON.stringify(latency.codes)}`);
    const stored = options.storedTokens.toLocaleString('en-US');
    const setting = { rounds: latencyRounds, perRound: latencyPerRound, warm: warmSize, process: 'fresh (scripts/bench-miss-latency.ts)' };
    figures.record(`verify p99, cache miss, ${HTTP_TOKENS.toLocaleString('en-US')} stored tokens`, latency.small.p99Ms, 'ms', { details: { ...latency.small, ...setting } });
    figures.record(`verify p99, cache miss, ${stored} stored tokens`, latency.large.p99Ms, 'ms', {
      details: { ...latency.large, ...setting, insertSeconds: largeInsertSeconds, rowsPerInsert: ROWS_PER_INSERT },
    });
    // As with the HTTP ratios, each round's ratio is taken within the round (both sides at the machine's speed of
    // that moment), and the figure is their median; the ratio of the whole run's p99s is reported beside it.
    const latencyRatios = latency.rounds.map((round) => round.large.p99Ms / round.small.p99Ms);
    figures.record(`verify p99 ${stored} / ${HTTP_TOKENS.toLocaleString('en-US')} stored tokens (median of rounds)`, median(latencyRatios), 'ratio', {
      target: { op: '<=', value: 1.2 },
      details: { ratios: latencyRatios.map((ratio) => Number(ratio.toFixed(3))) },
    });
    figures.record(`verify p99 ${stored} / ${HTTP_TOKENS.toLocaleString('en-US')} stored tokens, over the whole run`, latency.large.p99Ms / latency.small.p99Ms, 'ratio');
    // The median moves less with the machine's noise: what a larger table costs a typical miss.
    figures.record(`verify p50 ${stored} / ${HTTP_TOKENS.toLocaleString('en-US')} stored tokens`, latency.large.p50Ms / latency.small.p50Ms, 'ratio');
    figures.record(`insert ${stored} tokens (multi-row, ${ROWS_PER_INSERT} a statement)`, largeInsertSeconds, 's', { details: { insertSecondsFor10000: insertSeconds } });

    // 5. Memory, in a fresh process on the large data dir.
    log(`verification: memory with ${Math.min(MEMORY_TOKENS, memoryTokens.length).toLocaleString('en-US')} cached tokens`);
    const largeDir = largeSide.dataDir;
    const tokensFile = path.join(largeDir, 'bench-memory-tokens.txt');
    await writeFile(tokensFile, memoryTokens.join('\n'));
    const memoryScript = new URL('./bench-memory.ts', import.meta.url).pathname;
    // Started as `npm start` and `keyward serve` start Keyward (bin/keyward.js): with the server's V8 flags and
    // Node's compile cache, in the directory the entry uses. A first run only loads the modules, so the
    // measured one type-strips nothing, as no start after `npm install` does.
    const memoryEnv = { ...process.env, NODE_COMPILE_CACHE: path.join(tmpdir(), 'node-compile-cache') };
    // Node keys the cache by the V8 flags that change compiled code (--expose-gc does): the warm run passes the measured run's.
    await run(process.execPath, [...SERVER_NODE_FLAGS, '--expose-gc', memoryScript], { env: { ...memoryEnv, KEYWARD_BENCH_MEMORY_WARM: '1' } });
    const { stdout } = await run(process.execPath, [...SERVER_NODE_FLAGS, '--expose-gc', memoryScript], {
      env: { ...memoryEnv, KEYWARD_BENCH_MEMORY_DATA_DIR: largeDir, KEYWARD_BENCH_MEMORY_TOKENS: tokensFile, KEYWARD_BENCH_MEMORY_SECRETS: secrets },
      maxBuffer: 1024 * 1024,
    });
    await rm(largeDir, { recursive: true, force: true });
    const memory = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as MemoryReport;
    const cached = memory.cachedTokens.toLocaleString('en-US');
    const heapPerToken = (memory.after.heapUsedBytes - memory.before.heapUsedBytes) / Math.max(1, memory.cachedTokens);
    figures.record(`resident memory (rss) with ${cached} cached tokens, at rest`, memory.atRest.rssBytes / MB, 'MB', {
      target: { op: '<=', value: 200 },
      details: { before: memory.before, after: memory.after, atRest: memory.atRest, compactions: memory.compactions, atRestAfterMs: memory.atRestAfterMs, gc: memory.gc, codes: memory.codes },
    });
    figures.record(`resident memory (rss) with ${cached} cached tokens, right after filling (a full collection, before the heap compaction)`, memory.after.rssBytes / MB, 'MB');
    figures.record('resident memory (rss) of the same process before the cache was filled', memory.before.rssBytes / MB, 'MB');
    figures.record(`heap used with ${cached} cached tokens`, memory.after.heapUsedBytes / MB, 'MB', { details: { heapUsedBeforeMb: memory.before.heapUsedBytes / MB } });
    figures.record('heap per cached token', heapPerToken, 'bytes');
    // V8's young generation is empty after a gc, but stays committed (and resident) at the size the fill grew it to.
    figures.record(`V8 new space (empty young generation) with ${cached} cached tokens`, memory.after.newSpaceBytes / MB, 'MB', { details: { beforeMb: memory.before.newSpaceBytes / MB } });
  } finally {
    // Idempotent: a failure part-way still removes the data dirs.
    if (small) await stopInstance(small).catch(() => undefined);
    if (large) await stopInstance(large).catch(() => undefined);
    for (const dataDir of dataDirs) await rm(dataDir, { recursive: true, force: true });
  }
}
