// keyward import as users run it: a child process reading JSON Lines and
// sending batches to a real Keyward server listening on loopback.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBase62, sha256Digest } from '@keyward/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startKeywardServer, type KeywardTestServer } from '../../sdk/src/testing/keyward-server.ts';
import { ownerToken } from '../../server/src/testing/test-app.ts';
import { formatProgressBar, parseLines } from './remote/import-command.ts';
import { expectOneLineError, killStartedClis, startCli, type Finished } from './testing/cli-process.ts';

const LONG_MS = 180_000;
const DAY_MS = 86_400_000;

let server: KeywardTestServer;
let manager: string;
let workDir: string;
/** Every key and hash the tests handled: none may reach stdout or stderr. */
const secrets = new Set<string>();
const outputs: string[] = [];

beforeAll(async () => {
  server = await startKeywardServer({ env: { KEYWARD_LEGACY_TOKEN_PREFIXES: 'sk_live_' } });
  workDir = mkdtempSync(path.join(tmpdir(), 'keyward-cli-import-'));
  manager = await ownerToken(server.t, { name: 'importer', scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'scans:read'], expiresInDays: 365 });
});

afterEach(() => killStartedClis());

afterAll(async () => {
  for (const output of outputs) for (const secret of secrets) expect(output).not.toContain(secret);
  await server?.close();
  rmSync(workDir, { recursive: true, force: true });
});

async function keyward(args: string[], options: { token?: string; input?: string } = {}): Promise<Finished> {
  const env = { HOME: workDir, KEYWARD_URL: server.baseUrl, KEYWARD_TOKEN: options.token ?? manager };
  const result = await startCli(args, { cwd: workDir, env, ...(options.input !== undefined ? { input: options.input } : {}) }).finished;
  outputs.push(result.stdout, result.stderr);
  return result;
}

function legacyKey(): string {
  const key = `sk_live_${randomBase62(32)}`;
  secrets.add(key).add(sha256Digest(key));
  return key;
}

const inDays = (days: number) => new Date(Date.now() + days * DAY_MS).toISOString();

function line(fields: Record<string, unknown>): string {
  return JSON.stringify({ owner: { email: 'owner@example.com' }, scopes: ['scans:read'], expiresAt: inDays(90), ...fields });
}

function writeLines(name: string, lines: string[]): string {
  const file = path.join(workDir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('keyward import against a server', () => {
  it(
    'imports good lines, names bad ones by line number, and skips everything on a re-run',
    async () => {
      const plain = legacyKey();
      const hashed = legacyKey();
      const unparsable = legacyKey();
      const file = writeLines('keys.jsonl', [
        line({ externalId: 'cli-1', plaintext: plain, name: 'cli one' }),
        '',
        line({ externalId: 'cli-2', sha256: sha256Digest(hashed), prefix: 'sk_live_', name: 'cli two' }),
        `{"externalId":"cli-3","plaintext":"${unparsable}",`,
        line({ externalId: 'cli-4', sha256: 'xyz', prefix: 'sk_live_', name: 'cli four' }),
        line({ externalId: 'cli-5', plaintext: legacyKey(), owner: { email: 'nobody@example.com' }, name: 'cli five' }),
      ]);

      const first = await keyward(['import', file, '--batch-size', '2']);
      expect(first.code).toBe(1);
      // Not a terminal: one plain progress line per batch.
      expect(first.stderr.trimEnd().split('\n')).toEqual(['imported 3/5 lines', 'imported 5/5 lines']);
      expect(first.stdout).toContain('5 lines: 2 created, 0 skipped (already imported), 3 failed.');
      expect(first.stdout).toMatch(/^ {2}line 4: is not valid JSON$/m);
      expect(first.stdout).toMatch(/^ {2}line 5 \(cli-4\): sha256: /m);
      expect(first.stdout).toMatch(/^ {2}line 6 \(cli-5\): owner\/email: is not a member of this organization$/m);

      for (const key of [plain, hashed]) {
        const verified = await keyward(['verify', '-', '--scope', 'scans:read'], { token: server.verifyToken, input: `${key}\n` });
        expect(verified.code, verified.stdout).toBe(0);
      }

      const again = await keyward(['import', file, '--json']);
      expect(again.code).toBe(1);
      const answer = JSON.parse(again.stdout);
      expect(answer).toMatchObject({ dryRun: false, created: 0, skipped: 2, failed: 3 });
      expect(answer.lines.map((entry: any) => [entry.line, entry.status])).toEqual([
        [1, 'skipped'],
        [3, 'skipped'],
        [4, 'failed'],
        [5, 'failed'],
        [6, 'failed'],
      ]);

      const good = writeLines('good.jsonl', [line({ externalId: 'cli-1', plaintext: plain, name: 'cli one' })]);
      const rerun = await keyward(['import', good]);
      expect(rerun.code).toBe(0);
      expect(rerun.stdout).toBe('1 lines: 0 created, 1 skipped (already imported), 0 failed.\n');
    },
    LONG_MS,
  );

  it(
    'checks without writing on --dry-run, reading stdin',
    async () => {
      const key = legacyKey();
      const dry = await keyward(['import', '-', '--dry-run'], { input: `${line({ externalId: 'dry-1', plaintext: key, name: 'dry one' })}\n` });
      expect(dry.code).toBe(0);
      expect(dry.stdout).toBe('Dry run, nothing written: 1 lines: 1 would be created, 0 skipped (already imported), 0 failed.\n');
      const verified = await keyward(['verify', '-'], { token: server.verifyToken, input: `${key}\n` });
      expect(verified.code).toBe(1);
      expect(verified.stdout).toContain('NOT_FOUND');
    },
    LONG_MS,
  );

  it(
    'exits 2 without a file and 1 with a token that may not import',
    async () => {
      const missing = await keyward(['import']);
      expect(missing.code).toBe(2);
      expectOneLineError(missing, /import needs a JSON Lines file/);
      const unreadable = await keyward(['import', path.join(workDir, 'nowhere.jsonl')]);
      expect(unreadable.code).toBe(2);
      expectOneLineError(unreadable, /cannot read .*nowhere\.jsonl \(ENOENT\)/);

      const reader = await ownerToken(server.t, { name: 'reader', scopes: ['tokens:read'] });
      const file = writeLines('refused.jsonl', [line({ externalId: 'refused-1', plaintext: legacyKey(), name: 'refused' })]);
      const refused = await keyward(['import', file], { token: reader });
      expect(refused.code).toBe(1);
      expectOneLineError(refused, /tokens:manage/);
    },
    LONG_MS,
  );
});

describe('the import helpers', () => {
  it('draws a progress bar of the lines done', () => {
    expect(formatProgressBar(0, 10, 10)).toBe('[..........] 0/10 lines');
    expect(formatProgressBar(5, 10, 10)).toBe('[#####.....] 5/10 lines');
    expect(formatProgressBar(10, 10, 10)).toBe('[##########] 10/10 lines');
  });

  it('names bad lines by number and never quotes them', () => {
    const { pending, failed } = parseLines('{"externalId":"a"}\n\n[1]\n{"plaintext":"sk_live_secret\n');
    expect(pending).toEqual([{ line: 1, record: { externalId: 'a' } }]);
    expect(failed).toEqual([
      { line: 3, externalId: null, status: 'failed', errors: [{ field: '', message: 'is not a JSON object' }] },
      { line: 4, externalId: null, status: 'failed', errors: [{ field: '', message: 'is not valid JSON' }] },
    ]);
  });
});
