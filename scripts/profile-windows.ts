// Cuts a system profile of scripts/profile-verification-http.ts into its runs
// and says, per target, how many microseconds of the server thread each
// request took, and in what: the kernel's socket writes (on loopback they also
// deliver the answer and wake the reading thread, counted apart) and reads, garbage
// collection, Keyward's code (anything called from packages/), Fastify, and
// the rest (Node's HTTP machinery, streams, libuv).
//
//   perf script -i perf.data -F comm,tid,time,period,ip,sym,dso | npm exec -- node scripts/profile-windows.ts runs.jsonl
//
// The samples need call graphs (`perf record -g`) and JIT symbols
// (`node --perf-basic-prof`). Only the server's thread counts (its tid is the
// process id); autocannon's worker thread is left out.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { median } from './bench-figures.ts';

interface Run {
  target: string;
  round: number;
  startS: number;
  stopS: number;
  requests: number;
  requestsPerSecond: number;
  cpuMicros: number;
}

type Category = 'kernel: waking the reader' | 'kernel: socket write' | 'kernel: socket read' | 'kernel: other' | 'garbage collection' | 'Keyward code' | 'Fastify' | 'Node, streams, libuv';
const CATEGORIES: Category[] = ['kernel: waking the reader', 'kernel: socket write', 'kernel: socket read', 'kernel: other', 'garbage collection', 'Keyward code', 'Fastify', 'Node, streams, libuv'];
const GC_FRAME = /v8::internal::(Heap|Scavenger|ScavengerCollector|MarkCompactCollector|MinorMarkSweepCollector|ConcurrentMarking|IncrementalMarking|Sweeper)::/;

const runsFile = process.argv[2];
if (!runsFile) throw new Error('usage: perf script … | node scripts/profile-windows.ts runs.jsonl');
let pid = 0;
const runs: Run[] = [];
for (const line of readFileSync(runsFile, 'utf8').split('\n')) {
  if (!line.startsWith('{')) continue;
  const entry = JSON.parse(line) as Record<string, unknown>;
  if (entry.event === 'ready') pid = entry.pid as number;
  if (entry.event === 'run') {
    const cpu = entry.serverCpuMicrosPerRequest as { user: number; system: number };
    runs.push({
      target: entry.target as string,
      round: entry.round as number,
      startS: Number(BigInt(entry.startNs as string) / 1000n) / 1e6,
      stopS: Number(BigInt(entry.stopNs as string) / 1000n) / 1e6,
      requests: entry.requests as number,
      requestsPerSecond: entry.requestsPerSecond as number,
      cpuMicros: cpu.user + cpu.system,
    });
  }
}
if (pid === 0 || runs.length === 0) throw new Error(`${runsFile} has no ready line or no runs`);

interface Tally {
  nanos: Map<Category, number>;
  keywardFrames: Map<string, number>;
  total: number;
}
const tallies = new Map<string, Tally>();
for (const run of runs) {
  if (!tallies.has(run.target)) tallies.set(run.target, { nanos: new Map(), keywardFrames: new Map(), total: 0 });
}

/** A frame's function name without addresses and file URLs' common prefix. */
function functionOf(frame: string): string {
  const symbol = frame.replace(/^\s*[0-9a-f]+\s+/, '').replace(/ \([^)]*\)$/, '');
  return symbol.replace(/^JS:[*~^+]?'?/, '').replace(/file:\/\/\/\S*?\/packages\//, 'packages/');
}

function categoryOf(frames: string[]): Category {
  const leaf = frames[0] ?? '';
  if (leaf.includes('[kernel.kallsyms]')) {
    if (frames.some((frame) => frame.includes(' ksys_write ') || frame.includes(' __x64_sys_write'))) {
      // On loopback the writer's syscall delivers the segment and wakes the reading thread (autocannon's).
      return frames.some((frame) => frame.includes(' sock_def_readable ')) ? 'kernel: waking the reader' : 'kernel: socket write';
    }
    if (frames.some((frame) => frame.includes(' ksys_read ') || frame.includes(' __x64_sys_read'))) return 'kernel: socket read';
    return 'kernel: other';
  }
  if (frames.some((frame) => GC_FRAME.test(frame))) return 'garbage collection';
  if (frames.some((frame) => frame.includes('/packages/'))) return 'Keyward code';
  if (frames.some((frame) => frame.includes('node_modules/fastify/'))) return 'Fastify';
  return 'Node, streams, libuv';
}

function runAt(seconds: number): Run | undefined {
  return runs.find((run) => run.startS <= seconds && seconds <= run.stopS);
}

let header: { tid: number; seconds: number; period: number } | null = null;
let frames: string[] = [];
function endSample(): void {
  if (header && header.tid === pid) {
    const run = runAt(header.seconds);
    const tally = run && tallies.get(run.target);
    if (tally) {
      const category = categoryOf(frames);
      tally.nanos.set(category, (tally.nanos.get(category) ?? 0) + header.period);
      tally.total += header.period;
      // Inclusive time of each Keyward function on the stack, counted once a sample.
      const seen = new Set<string>();
      for (const frame of frames) {
        if (!frame.includes('/packages/')) continue;
        const name = functionOf(frame);
        if (seen.has(name)) continue;
        seen.add(name);
        tally.keywardFrames.set(name, (tally.keywardFrames.get(name) ?? 0) + header.period);
      }
    }
  }
  header = null;
  frames = [];
}

// A sample: "comm tid seconds: period" then one indented line per frame, then a blank line.
const HEADER = /^\S.*?\s(\d+)\s+(\d+\.\d+):\s+(\d+)\s*$/;
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim() === '') {
    endSample();
    continue;
  }
  if (/^\s/.test(line)) {
    frames.push(line);
    continue;
  }
  endSample();
  const match = HEADER.exec(line);
  if (match) header = { tid: Number(match[1]), seconds: Number(match[2]), period: Number(match[3]) };
}
endSample();

const perRequest = (nanos: number, requests: number) => (nanos / 1000 / Math.max(1, requests)).toFixed(1);
const rows: string[][] = [['', ...tallies.keys()]];
const requestsOf = (target: string) => runs.filter((run) => run.target === target).reduce((sum, run) => sum + run.requests, 0);
rows.push(['runs', ...[...tallies.keys()].map((target) => String(runs.filter((run) => run.target === target).length))]);
rows.push(['req/s (median run)', ...[...tallies.keys()].map((target) => String(median(runs.filter((run) => run.target === target).map((run) => run.requestsPerSecond))))]);
rows.push(['thread CPU µs/request (median run)', ...[...tallies.keys()].map((target) => median(runs.filter((run) => run.target === target).map((run) => run.cpuMicros)).toFixed(1))]);
rows.push(['profiled µs/request', ...[...tallies.entries()].map(([target, tally]) => perRequest(tally.total, requestsOf(target)))]);
for (const category of CATEGORIES) rows.push([`  ${category}`, ...[...tallies.entries()].map(([target, tally]) => perRequest(tally.nanos.get(category) ?? 0, requestsOf(target)))]);
const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
for (const row of rows) console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '));

for (const [target, tally] of tallies) {
  if (tally.keywardFrames.size === 0) continue;
  console.log(`\n${target}: Keyward functions, inclusive µs/request (inlined functions count in their caller)`);
  const top = [...tally.keywardFrames.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
  for (const [name, nanos] of top) console.log(`${perRequest(nanos, requestsOf(target)).padStart(7)}  ${name}`);
}
