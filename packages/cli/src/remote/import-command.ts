// keyward import: existing API keys from a JSON Lines file into a Keyward
// server (POST /api/v1/tokens/import), in batches, with progress on stderr
// and a summary naming the line of every record that failed. Keys and hashes
// are read, sent and forgotten: nothing printed ever contains one.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { UsageError } from '../usage-error.ts';
import { parseWholeNumber } from './flag-values.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS, RequestRefusedError, callServer, resolveConnection, type Connection } from './server-connection.ts';

export const IMPORT_HELP = `Usage: keyward import <file.jsonl | -> [options]

Imports existing API keys, one JSON object per line ("-" reads stdin), so their
holders keep using them. Each line gives the key as "plaintext" (a Keyward token,
or a key with a prefix the server lists in legacyTokenPrefixes) or as "sha256"
(the hex SHA-256 another key service stored, with its "prefix"), an "externalId"
that stays the same across runs (a line already imported is skipped, so running
the same file again creates no duplicates), an "owner" ({"email"}, {"userId"} or
{"clientId"}), "name", "scopes", and optionally "resources", "permission",
"expiresAt", "allowedIps" and "metadata". See docs/import.md.

Needs a token with tokens:manage at the admin level (and clients:manage for
service tokens). Exit 0 when every line was imported or skipped, 1 when any
failed (each is listed with its line number), 2 on a usage error.

Options:
  --dry-run             check every line on the server and write nothing
  --batch-size <n>      lines per request, 1-1000 (default 500)
${CONNECTION_HELP}

Example:
  {"externalId":"key_81","plaintext":"sk_live_…","owner":{"email":"ana@example.com"},"name":"ci","scopes":["scans:read"],"expiresAt":"2027-01-01T00:00:00Z"}
  keyward import keys.jsonl --dry-run && keyward import keys.jsonl
`;

const DEFAULT_BATCH_SIZE = 500;
const MAX_BATCH_SIZE = 1000;
const BAR_WIDTH = 30;

interface FieldError {
  field: string;
  message: string;
}

/** One line's fate, as printed and as --json gives it. */
export interface LineOutcome {
  line: number;
  externalId: string | null;
  status: 'created' | 'skipped' | 'failed';
  tokenId?: string | null;
  errors?: FieldError[];
}

interface ServerResult {
  index: number;
  externalId: string;
  status: 'created' | 'skipped' | 'failed';
  tokenId?: string | null;
  errors?: FieldError[];
}

interface PendingLine {
  line: number;
  record: Record<string, unknown>;
}

/** `[#####.....] 120/300 lines` for a terminal; redrawn in place. */
export function formatProgressBar(done: number, total: number, width = BAR_WIDTH): string {
  const filled = total === 0 ? width : Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} lines`;
}

/** Reports progress on stderr: a bar redrawn in place at a terminal, one plain line per batch otherwise. */
function progressReporter(total: number): { update(done: number): void; finish(): void } {
  const terminal = process.stderr.isTTY === true;
  return {
    update(done) {
      if (terminal) process.stderr.write(`\r${formatProgressBar(done, total)}`);
      else process.stderr.write(`imported ${done}/${total} lines\n`);
    },
    finish() {
      if (terminal) process.stderr.write('\n');
    },
  };
}

async function readSource(source: string): Promise<string> {
  if (source !== '-') {
    try {
      return await readFile(source, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read ${source} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  }
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}

/** Parses every non-blank line; a line that is not a JSON object fails here, named by its number and never quoted. */
export function parseLines(text: string): { pending: PendingLine[]; failed: LineOutcome[] } {
  const pending: PendingLine[] = [];
  const failed: LineOutcome[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not the parser's message: it quotes the line, and the line holds a key.
      failed.push({ line, externalId: null, status: 'failed', errors: [{ field: '', message: 'is not valid JSON' }] });
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      failed.push({ line, externalId: null, status: 'failed', errors: [{ field: '', message: 'is not a JSON object' }] });
      return;
    }
    pending.push({ line, record: value as Record<string, unknown> });
  });
  return { pending, failed };
}

function externalIdOf(record: Record<string, unknown>): string | null {
  return typeof record.externalId === 'string' ? record.externalId : null;
}

/** The record index and the field inside it, from a schema error such as `records/3/owner/email`. */
function recordFieldOf(field: unknown): { index: number; field: string } | null {
  const match = typeof field === 'string' ? /^\/?records\/(\d+)(?:\/(.*))?$/.exec(field) : null;
  return match ? { index: Number(match[1]), field: match[2] ?? '' } : null;
}

/**
 * Sends one batch. The server refuses a batch with a malformed record as a
 * whole, naming it: such records fail with their line, and the rest is sent again.
 */
async function sendBatch(connection: Connection, batch: PendingLine[], dryRun: boolean): Promise<LineOutcome[]> {
  const outcomes: LineOutcome[] = [];
  let remaining = batch;
  while (remaining.length > 0) {
    try {
      const answer = await callServer<{ results: ServerResult[] }>(connection, { method: 'POST', path: 'api/v1/tokens/import', body: { records: remaining.map((pending) => pending.record), dryRun } });
      for (const result of answer.results) {
        const pending = remaining[result.index];
        if (!pending) continue;
        outcomes.push({ line: pending.line, externalId: result.externalId, status: result.status, ...(result.tokenId !== undefined ? { tokenId: result.tokenId } : {}), ...(result.errors ? { errors: result.errors } : {}) });
      }
      return outcomes;
    } catch (error) {
      const rejected = rejectedRecords(error, remaining.length);
      if (!rejected) throw error;
      for (const [index, errors] of rejected) {
        const pending = remaining[index]!;
        outcomes.push({ line: pending.line, externalId: externalIdOf(pending.record), status: 'failed', errors });
      }
      remaining = remaining.filter((_, index) => !rejected.has(index));
    }
  }
  return outcomes;
}

/** The records a 400 validation_failed names, with their errors; null when it names none (then the batch is refused). */
function rejectedRecords(error: unknown, count: number): Map<number, FieldError[]> | null {
  if (!(error instanceof RequestRefusedError) || error.status !== 400) return null;
  const problem = error.problem as { code?: unknown; errors?: Array<{ field?: unknown; message?: unknown }> } | null;
  if (problem?.code !== 'validation_failed' || !Array.isArray(problem.errors)) return null;
  const rejected = new Map<number, FieldError[]>();
  for (const entry of problem.errors) {
    const at = recordFieldOf(entry.field);
    if (!at || at.index >= count) return null;
    const list = rejected.get(at.index) ?? [];
    list.push({ field: at.field, message: String(entry.message) });
    rejected.set(at.index, list);
  }
  return rejected.size > 0 ? rejected : null;
}

function describeFailure(outcome: LineOutcome): string {
  const reasons = (outcome.errors ?? []).map((error) => (error.field ? `${error.field}: ${error.message}` : error.message));
  const id = outcome.externalId === null ? '' : ` (${outcome.externalId})`;
  return `  line ${outcome.line}${id}: ${reasons.join('; ') || 'failed'}`;
}

export async function importCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...CONNECTION_OPTIONS, 'dry-run': { type: 'boolean' }, 'batch-size': { type: 'string' } },
  });
  if (values.help) {
    console.log(IMPORT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'import needs a JSON Lines file, or - for stdin; see --help' : 'too many arguments; see --help');
  const batchSize = values['batch-size'] === undefined ? DEFAULT_BATCH_SIZE : parseWholeNumber('--batch-size', values['batch-size'], 1);
  if (batchSize > MAX_BATCH_SIZE) throw new UsageError(`--batch-size must be at most ${MAX_BATCH_SIZE}`);
  const dryRun = values['dry-run'] === true;
  const connection = resolveConnection(values, env, 'tokens:manage (admin)');

  const { pending, failed } = parseLines(await readSource(positionals[0]!));
  const total = pending.length + failed.length;
  const outcomes: LineOutcome[] = [...failed];
  const progress = progressReporter(total);
  let done = failed.length;
  try {
    for (let start = 0; start < pending.length; start += batchSize) {
      const batch = pending.slice(start, start + batchSize);
      outcomes.push(...(await sendBatch(connection, batch, dryRun)));
      done += batch.length;
      progress.update(done);
    }
  } finally {
    progress.finish();
  }
  outcomes.sort((a, b) => a.line - b.line);
  const count = (status: LineOutcome['status']) => outcomes.filter((outcome) => outcome.status === status).length;
  const summary = { dryRun, created: count('created'), skipped: count('skipped'), failed: count('failed') };
  if (values.json) {
    console.log(JSON.stringify({ ...summary, lines: outcomes }, null, 2));
  } else {
    const created = dryRun ? `${summary.created} would be created` : `${summary.created} created`;
    console.log(`${dryRun ? 'Dry run, nothing written: ' : ''}${total} lines: ${created}, ${summary.skipped} skipped (already imported), ${summary.failed} failed.`);
    if (summary.failed > 0) {
      console.log('Failed:');
      for (const outcome of outcomes) if (outcome.status === 'failed') console.log(describeFailure(outcome));
    }
  }
  return summary.failed > 0 ? 1 : 0;
}
