// Where the server's time goes on POST /api/v1/verify, GET /api/v1/authz and
// the bare Fastify ceiling, for a system profiler (docs/performance.md,
// "Where each microsecond goes"). The bench's HTTP setting (10,000 tokens plus
// 5 % unknown ones, 32 connections, autocannon in a worker thread), run in
// rounds of the three back to back so they share the machine's moods. Each run
// prints one JSON line with its monotonic start and stop (the clock
// `perf record -k CLOCK_MONOTONIC` stamps samples with), its requests and this
// thread's CPU, so scripts/profile-windows.ts can cut a profile into runs.
//
//   npm exec -- node --perf-basic-prof scripts/profile-verification-http.ts > runs.jsonl &
//   perf record -k CLOCK_MONOTONIC -F 2000 -e cpu-clock -g -p <pid from the first line> -o perf.data
//   perf script -i perf.data -F comm,time,period,ip,sym | npm exec -- node scripts/profile-windows.ts runs.jsonl
//
// KEYWARD_PROFILE_ROUNDS (3), KEYWARD_PROFILE_SECONDS (6) and
// KEYWARD_PROFILE_TARGETS (bare,verify,authz) change the plan;
// KEYWARD_PROFILE_DELAY_MS (2000) is the pause before the first run, for
// attaching the profiler. Everything runs on 127.0.0.1 and stops by itself.
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import Fastify from 'fastify';
import { DEFAULT_TOKEN_PREFIXES, generateToken, newKeyringEntry, parseKeyring } from '@keyward/core';
import type { VerifyContext } from '../packages/server/src/verification/verifier.ts';
import type { LoadPlan } from './bench-load.ts';
import { insertTokens, issueVerifyToken, load, mix, openInstance } from './bench-verification.ts';

const TARGETS = ['bare', 'verify', 'authz'] as const;
type Target = (typeof TARGETS)[number];

function setting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

const rounds = setting('KEYWARD_PROFILE_ROUNDS', 3);
const seconds = setting('KEYWARD_PROFILE_SECONDS', 6);
const delayMs = setting('KEYWARD_PROFILE_DELAY_MS', 2000);
const targets = (process.env.KEYWARD_PROFILE_TARGETS ?? TARGETS.join(',')).split(',') as Target[];
for (const target of targets) if (!TARGETS.includes(target)) throw new Error(`unknown target ${target}: use ${TARGETS.join(', ')}`);

const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const monotonicNs = () => process.hrtime.bigint().toString();
const urlOf = (server: { address(): unknown }) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const keyring = parseKeyring(newKeyringEntry('v1'));
const instance = await openInstance(keyring, 'profile');
const bare = Fastify({ logger: false });
try {
  const valid: string[] = [];
  await insertTokens(instance, keyring, 10_000, (_index, plaintext) => valid.push(plaintext));
  const unknown = Array.from({ length: 500 }, () => generateToken(DEFAULT_TOKEN_PREFIXES.personal));
  const tokens = mix(valid, unknown);
  const question = { scopes: ['scans:read'], organizationId: instance.organizationId };
  const context: VerifyContext = { entryPoint: 'verify', spendQuota: true };
  for (const token of tokens) await instance.context.verifier.verify(token, question, context);
  const callerToken = await issueVerifyToken(instance);
  await instance.app.listen({ host: '127.0.0.1', port: 0 });

  // The ceiling answers a real answer's bytes, as in the bench.
  const sample = await instance.app.inject({ method: 'POST', url: '/api/v1/verify', headers: { authorization: `Bearer ${callerToken}` }, payload: { token: valid[0], scopes: ['scans:read'] } });
  const answer: unknown = sample.json();
  bare.post('/api/v1/verify', async (request) => (request.body ? answer : null));
  await bare.listen({ host: '127.0.0.1', port: 0 });

  const headers = { 'content-type': 'application/json', authorization: `Bearer ${callerToken}` };
  const bodies = tokens.map((token) => JSON.stringify({ token, scopes: ['scans:read'] }));
  const plans: Record<Target, LoadPlan> = {
    bare: { url: urlOf(bare.server), method: 'POST', path: '/api/v1/verify', headers, variants: bodies, vary: 'body', connections: 32, durationSeconds: seconds },
    verify: { url: urlOf(instance.app.server), method: 'POST', path: '/api/v1/verify', headers, variants: bodies, vary: 'body', connections: 32, durationSeconds: seconds },
    authz: {
      url: urlOf(instance.app.server),
      method: 'GET',
      path: '/api/v1/authz?scopes=scans:read',
      headers: {},
      variants: tokens.map((token) => `Bearer ${token}`),
      vary: 'authorization',
      connections: 32,
      durationSeconds: seconds,
    },
  };
  // Code compiled and connections made before anything is measured.
  for (const target of targets) await load({ ...plans[target], durationSeconds: 1 });

  print({ event: 'ready', pid: process.pid, rounds, seconds, targets });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  for (let round = 1; round <= rounds; round += 1) {
    for (const target of targets) {
      const startNs = monotonicNs();
      const cpuBefore = process.threadCpuUsage();
      const result = await load(plans[target]);
      const cpu = process.threadCpuUsage(cpuBefore);
      const stopNs = monotonicNs();
      const requests = Math.max(1, result.requests);
      print({
        event: 'run',
        target,
        round,
        startNs,
        stopNs,
        requests: result.requests,
        requestsPerSecond: Math.round(result.requestsPerSecond),
        p99Ms: result.p99Ms,
        serverCpuMicrosPerRequest: { user: cpu.user / requests, system: cpu.system / requests },
        statusCodes: result.statusCodes,
      });
    }
  }
} finally {
  await bare.close();
  await instance.app.close();
  await instance.database.close();
  await rm(instance.dataDir, { recursive: true, force: true });
}
