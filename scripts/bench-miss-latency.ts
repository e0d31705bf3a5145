// Run by bench-verification.ts in a fresh process: the miss latency of two
// Keyward apps on existing SQLite data dirs (10,000 and 1,000,000 stored
// tokens), taking turns on every verification so a stall of the machine falls
// on both alike, and prints each side's p50 and p99, over the run and per
// round, as one JSON line.
//
// A fresh process, as for bench-memory.ts: what is timed is a server on those
// files, not the benchmark's process with the heap of a million generated tokens
// (docs/performance.md, "The miss latency at 1,000,000 tokens, measured apart").
//
// Each database file is first read through twice, as plain bytes. The bulk
// insert has just written the million-token file: its pages are in the OS cache
// but have never been read, and the first process to read them ran its misses
// up to 2x slower at the p99 than every process after it. Read twice, the file
// is in the state a running server's reads keep it in.
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseKeyring, type Keyring } from '@keyward/core';
import { buildApp, loadConfig, openDatabase } from '@keyward/server';
import { SQLITE_FILE_NAME } from '../packages/server/src/storage/database.ts';
import type { VerifyContext } from '../packages/server/src/verification/verifier.ts';
import { percentile } from './bench-figures.ts';

/** One database's tokens: the measured ones and the ones that warm the code first (not measured). */
export interface MissLatencySide {
  dataDir: string;
  organizationId: string;
  sample: string[];
  warm: string[];
}

export interface MissLatencyPlan {
  secrets: string;
  /** What each verification asks for (the benchmark's question). */
  scopes: string[];
  rounds: number;
  perRound: number;
  small: MissLatencySide;
  large: MissLatencySide;
}

export interface MissLatencySummary {
  p50Ms: number;
  p99Ms: number;
  samples: number;
}

export interface MissLatencyReport {
  /** Over every round. */
  small: MissLatencySummary;
  large: MissLatencySummary;
  /** Each round's own figures: the machine's speed drifts between rounds, both sides drift together within one. */
  rounds: { small: MissLatencySummary; large: MissLatencySummary }[];
  /** Every measured answer's code: all VALID, or the figure measured something else. */
  codes: Record<string, number>;
}

type Side = 'small' | 'large';
const SIDES: readonly Side[] = ['small', 'large'];
const SIDES_REVERSED: readonly Side[] = ['large', 'small'];
const CONTEXT: VerifyContext = { entryPoint: 'verify', spendQuota: true };

function readThrough(file: string): void {
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(file, 'r');
  try {
    while (readSync(fd, buffer, 0, buffer.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

async function openSide(side: MissLatencySide, keyring: Keyring, scopes: string[]) {
  const database = await openDatabase({ dataDir: side.dataDir });
  // All the questions come from this process: no per-address failure limit in the way.
  const config = loadConfig({ LOG_LEVEL: 'silent', KEYWARD_VERIFY_FAILURES_PER_IP: '1000000' }, tmpdir());
  const { app, context } = await buildApp({ config, database, keyring });
  await app.ready();
  return { database, app, verifier: context.verifier, question: { scopes, organizationId: side.organizationId }, tokens: side };
}

const planFile = process.env.KEYWARD_BENCH_MISS_PLAN;
if (!planFile) throw new Error('bench-miss-latency.ts is run by npm run bench, which sets its environment');
const plan = JSON.parse(await readFile(planFile, 'utf8')) as MissLatencyPlan;
const keyring = parseKeyring(plan.secrets);
for (const side of SIDES) for (let pass = 0; pass < 2; pass += 1) readThrough(path.join(plan[side].dataDir, SQLITE_FILE_NAME));
const opened = { small: await openSide(plan.small, keyring, plan.scopes), large: await openSide(plan.large, keyring, plan.scopes) };
try {
  // Untimed: the code path compiled and optimized, as in a server that has been running.
  for (const side of SIDES) for (const token of opened[side].tokens.warm) await opened[side].verifier.verify(token, opened[side].question, CONTEXT);
  const latencies: Record<Side, number[]> = { small: [], large: [] };
  const codes: Record<string, number> = {};
  const rounds: MissLatencyReport['rounds'] = [];
  const summary = (values: number[]): MissLatencySummary => ({ p50Ms: percentile(values, 50), p99Ms: percentile(values, 99), samples: values.length });
  for (let round = 0; round < plan.rounds; round += 1) {
    const roundStart = latencies.small.length;
    // Each round starts from empty caches: every verification reads the database.
    for (const side of SIDES) opened[side].verifier.reset();
    for (let i = 0; i < plan.perRound; i += 1) {
      // Which side goes first alternates too.
      for (const side of i % 2 === 0 ? SIDES : SIDES_REVERSED) {
        const { verifier, question, tokens } = opened[side];
        const token = tokens.sample[(round * plan.perRound + i) % tokens.sample.length] as string;
        const started = performance.now();
        const { result } = await verifier.verify(token, question, CONTEXT);
        latencies[side].push(performance.now() - started);
        codes[result.code] = (codes[result.code] ?? 0) + 1;
      }
    }
    rounds.push({ small: summary(latencies.small.slice(roundStart)), large: summary(latencies.large.slice(roundStart)) });
  }
  const report: MissLatencyReport = { small: summary(latencies.small), large: summary(latencies.large), rounds, codes };
  console.log(JSON.stringify(report));
} finally {
  for (const side of SIDES) {
    await opened[side].app.close();
    await opened[side].database.close();
  }
}
