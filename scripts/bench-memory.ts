// Run by bench-verification.ts in a fresh process (node --expose-gc): a
// Keyward app on an existing SQLite data dir verifies every token listed in a
// file once, filling its cache, and prints its memory before, right after (a
// full collection) and at rest (once the server compacted its heap, as a
// started server does when it goes quiet: memory/heap-compactor.ts) as one
// JSON line. A fresh process, so the benchmark's own arrays and the garbage of
// inserting a million rows are not counted as the cache's.
import { readFile } from 'node:fs/promises';
import { getHeapSpaceStatistics } from 'node:v8';
import { tmpdir } from 'node:os';
import { parseKeyring } from '@keyward/core';
import { buildApp, loadConfig, openDatabase } from '@keyward/server';

export interface MemoryReport {
  cachedTokens: number;
  before: Usage;
  /** Right after the fill, its buffers written and a full collection. */
  after: Usage;
  /** Once the heap compactor ran (or 30 s passed without it). */
  atRest: Usage;
  compactions: number;
  /** How long the server took to go quiet and compact after the fill (ms). */
  atRestAfterMs: number;
  gc: boolean;
  codes: Record<string, number>;
}

function collect(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  gc();
  gc();
  return true;
}

export interface Usage {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** The committed size of V8's new space (young generation), empty right after a gc. */
  newSpaceBytes: number;
}

function usage(): Usage {
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  return { rssBytes: rss, heapUsedBytes: heapUsed, heapTotalBytes: heapTotal, externalBytes: external, newSpaceBytes: newSpace?.space_size ?? 0 };
}

// A first run only loads the modules, so Node's compile cache holds this script too (see bench-verification.ts).
if (process.env.KEYWARD_BENCH_MEMORY_WARM === '1') process.exit(0);

const dataDir = process.env.KEYWARD_BENCH_MEMORY_DATA_DIR;
const tokensFile = process.env.KEYWARD_BENCH_MEMORY_TOKENS;
const secrets = process.env.KEYWARD_BENCH_MEMORY_SECRETS;
if (!dataDir || !tokensFile || !secrets) throw new Error('bench-memory.ts is run by npm run bench, which sets its environment');

const tokens = (await readFile(tokensFile, 'utf8')).split('\n').filter(Boolean);
const database = await openDatabase({ dataDir });
const config = loadConfig({ LOG_LEVEL: 'silent', KEYWARD_CACHE_MAX_TOKENS: String(Math.max(100_000, tokens.length)) }, tmpdir());
const { app, context } = await buildApp({ config, database, keyring: parseKeyring(secrets) });
await app.ready();
// As startServer does once it listens.
context.heapCompactor.start();
// Warm the code path on a few tokens first, so compiled code is in both measurements.
for (const token of tokens.slice(0, 100)) await context.verifier.verify(token, {}, { entryPoint: 'verify', spendQuota: false });
context.verifier.reset();
const gc = collect();
const before = usage();
const codes: Record<string, number> = {};
for (const token of tokens) {
  const { result } = await context.verifier.verify(token, {}, { entryPoint: 'verify', spendQuota: false });
  codes[result.code] = (codes[result.code] ?? 0) + 1;
}
// The buffers are flushed first: what is measured is the cache, not pending writes.
await context.verifier.flush();
await context.usage.flush();
collect();
const after = usage();
// The server at rest: it compacts its heap at its first check (every 10 s) that finds it quiet.
const waitStarted = performance.now();
while (context.heapCompactor.compactions === 0 && performance.now() - waitStarted < 30_000) await new Promise((resolve) => setTimeout(resolve, 250));
const atRestAfterMs = Math.round(performance.now() - waitStarted);
const report: MemoryReport = {
  cachedTokens: context.verifier.cache.size,
  before,
  after,
  atRest: usage(),
  compactions: context.heapCompactor.compactions,
  atRestAfterMs,
  gc,
  codes,
};
await app.close();
await database.close();
console.log(JSON.stringify(report));
