// The figures `npm run bench` reports: each with its unit and, where the
// issue set one, its target and whether this run met it. Figures only: the
// bench never fails on speed, since a shared machine makes any threshold flaky.
import { performance } from 'node:perf_hooks';

export interface Target {
  /** `>=`: more is better (throughput); `<=`: less is better (latency, memory, writes). */
  op: '>=' | '<=';
  value: number;
}

export interface Figure {
  name: string;
  value: number;
  unit: string;
  target?: Target;
  meetsTarget?: boolean;
  /** How the figure was taken, and the numbers behind it. */
  details?: Record<string, unknown>;
}

export class Figures {
  readonly all: Figure[] = [];

  record(name: string, value: number, unit: string, options: { target?: Target; details?: Record<string, unknown> } = {}): Figure {
    const figure: Figure = { name, value: round(value), unit };
    if (options.target) {
      figure.target = options.target;
      // Judged on the unrounded value, so 1.004 does not pass a target of 1.
      figure.meetsTarget = options.target.op === '>=' ? value >= options.target.value : value <= options.target.value;
    }
    if (options.details) figure.details = options.details;
    this.all.push(figure);
    return figure;
  }

  table(): string {
    const rows = this.all.map((figure) => [
      figure.name,
      `${formatNumber(figure.value)} ${figure.unit}`,
      figure.target ? `${figure.target.op} ${formatNumber(figure.target.value)} ${figure.unit}` : '',
      figure.meetsTarget === undefined ? '' : figure.meetsTarget ? '✓' : '✗',
    ]);
    const header = ['figure', 'value', 'target', ''];
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
    const line = (cells: string[]) => cells.map((cell, column) => (column === 1 ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd();
    return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
  }
}

function round(value: number): number {
  if (Math.abs(value) >= 100) return Math.round(value * 10) / 10;
  return Math.round(value * 1000) / 1000;
}

function formatNumber(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

/** Operations per second, as the median of several timed rounds. */
export function opsPerSecond(rounds: number, perRound: number, fn: () => void): number {
  const rates: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const start = performance.now();
    for (let i = 0; i < perRound; i += 1) fn();
    rates.push(perRound / ((performance.now() - start) / 1000));
  }
  return median(rates);
}

/** Rates of sequential awaited operations, one per round; `before` runs untimed ahead of each round. */
export async function asyncRates(rounds: number, perRound: number, fn: (i: number) => Promise<unknown>, before?: () => void): Promise<number[]> {
  const rates: number[] = [];
  let next = 0;
  for (let round = 0; round < rounds; round += 1) {
    before?.();
    const start = performance.now();
    for (let i = 0; i < perRound; i += 1) await fn(next++);
    rates.push(perRound / ((performance.now() - start) / 1000));
  }
  return rates;
}

export async function asyncOpsPerSecond(rounds: number, perRound: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  return median(await asyncRates(rounds, perRound, fn));
}
