// What Keyward's own work for a POST /api/v1/verify costs, without the HTTP
// stack (docs/performance.md, "The fast path in a warm loop"). Requests go
// through the fast path's handler in a loop over mocked sockets: a request
// that emits the bench's body, a response whose writeHead and end only note
// the status. Both verifications, the body's parse and check, the request id,
// the headers object and the counting all run; Node's HTTP parser and its
// writing of the headers do not. The bench's setting otherwise: 10,000 tokens
// plus 5 % unknown ones, cycled, in a temporary SQLite data dir removed at the end.
//
//   npm exec -- node scripts/profile-fast-path-loop.ts
//
// KEYWARD_PROFILE_TREES (this checkout) takes a comma-separated list of
// checkouts sharing this one's node_modules, to compare versions of the code in
// one process: their rounds alternate, so they share the machine's moods.
// KEYWARD_PROFILE_ROUNDS (11) and KEYWARD_PROFILE_REQUESTS (10,000 a round) change the plan.
// KEYWARD_PROFILE_EVICT_KB (0) touches that many KB of other memory before each
// request, as the HTTP stack's work between two requests would, and subtracts
// the time of the touches alone: what the same work costs with colder caches.
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { DEFAULT_TOKEN_PREFIXES, generateToken, newKeyringEntry, parseKeyring } from '@keyward/core';
import { median } from './bench-figures.ts';
import type * as BenchVerification from './bench-verification.ts';
import type { Instance } from './bench-verification.ts';

type BenchModule = typeof BenchVerification;

function setting(name: string, fallback: number, least = 1): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < least) throw new Error(`${name} must be an integer of at least ${least}`);
  return value;
}

const rounds = setting('KEYWARD_PROFILE_ROUNDS', 11);
const requestsPerRound = setting('KEYWARD_PROFILE_REQUESTS', 10_000);
const evictKb = setting('KEYWARD_PROFILE_EVICT_KB', 0, 0);
// One touch per 64-byte cache line (8 doubles), from a buffer 64 times the span read, so each request's reads start elsewhere.
const DOUBLES_PER_LINE = 8;
const evictLines = (evictKb * 1024) / 64;
const elsewhere = new Float64Array(evictLines * DOUBLES_PER_LINE * 64);
const elsewhereLines = elsewhere.length / DOUBLES_PER_LINE;
let evictFrom = 0;
function evict(): void {
  // A read and a write of each line: a store cannot be optimized away, as an unused read could be.
  for (let line = 0; line < evictLines; line += 1) elsewhere[((evictFrom + line) % elsewhereLines) * DOUBLES_PER_LINE]! += 1;
  evictFrom = (evictFrom + evictLines) % elsewhereLines;
}
/** Microseconds of {@link evict} alone, to subtract. */
function evictMicros(count: number): number {
  if (evictLines === 0) return 0;
  const started = performance.now();
  for (let index = 0; index < count; index += 1) evict();
  return ((performance.now() - started) * 1000) / count;
}
const here = path.resolve(import.meta.dirname, '..');
const trees = (process.env.KEYWARD_PROFILE_TREES ?? here).split(',').map((tree) => path.resolve(tree));

interface Target {
  tree: string;
  instance: Instance;
  /** Microseconds a request over `count` requests. */
  run(count: number): Promise<number>;
}

async function prepare(tree: string): Promise<Target> {
  const bench = (await import(path.join(tree, 'scripts/bench-verification.ts'))) as BenchModule;
  const keyring = parseKeyring(newKeyringEntry('v1'));
  const instance = await bench.openInstance(keyring, 'loop');
  const valid: string[] = [];
  await bench.insertTokens(instance, keyring, 10_000, (_index, plaintext) => valid.push(plaintext));
  const unknown = Array.from({ length: 500 }, () => generateToken(DEFAULT_TOKEN_PREFIXES.personal));
  const bodies = bench.mix(valid, unknown).map((token) => Buffer.from(JSON.stringify({ token, scopes: bench.QUESTION_SCOPES })));
  const caller = await bench.issueVerifyToken(instance);
  const fastPath = instance.context.verifyFastPath;
  if (!fastPath) throw new Error('the fast path is off (KEYWARD_VERIFY_FAST_PATH)');
  const socket = { remoteAddress: '127.0.0.1', remotePort: 40_000, encrypted: false };
  let next = 0;

  const one = () =>
    new Promise<number>((resolve) => {
      const body = bodies[next++ % bodies.length]!;
      const req = Object.assign(new EventEmitter(), {
        method: 'POST',
        url: '/api/v1/verify',
        socket,
        headers: { host: '127.0.0.1', 'content-type': 'application/json', 'content-length': String(body.length), authorization: `Bearer ${caller}` },
      });
      let status = 0;
      const res = {
        headersSent: false,
        writeHead(code: number) {
          status = code;
          this.headersSent = true;
        },
        end: () => resolve(status),
        destroy: () => resolve(-1),
      };
      fastPath.handle(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      req.emit('data', body);
      req.emit('end');
    });

  const run = async (count: number) => {
    const started = performance.now();
    for (let index = 0; index < count; index += 1) {
      if (evictLines > 0) evict();
      const status = await one();
      if (status !== 200) throw new Error(`a request was answered ${status}`);
    }
    return ((performance.now() - started) * 1000) / count - evictMicros(count);
  };
  // Every token cached (or known unknown), the code compiled.
  await run(bodies.length * 2);
  return { tree, instance, run };
}

const targets: Target[] = [];
try {
  for (const tree of trees) targets.push(await prepare(tree));
  const perRound = new Map<string, number[]>(trees.map((tree) => [tree, []]));
  for (let round = 0; round < rounds; round += 1) {
    // Alternate which goes first, so neither always runs right after the other.
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) perRound.get(target.tree)!.push(await target.run(requestsPerRound));
  }
  for (const [tree, micros] of perRound) {
    process.stdout.write(`${JSON.stringify({ tree, requestsPerRound, evictKb, medianMicrosPerRequest: Number(median(micros).toFixed(2)), rounds: micros.map((value) => Number(value.toFixed(2))) })}\n`);
  }
} finally {
  for (const { instance } of targets) {
    await instance.app.close();
    await instance.database.close();
    await rm(instance.dataDir, { recursive: true, force: true });
  }
}
