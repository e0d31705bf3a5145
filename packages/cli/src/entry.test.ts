import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SERVER_NODE_FLAGS } from './node-flags.ts';

const run = promisify(execFile);
const BIN = path.join(import.meta.dirname, '..', 'bin');

/**
 * Runs a script of bin/ on this Node, with the server's V8 flags as `npm start` and the install's
 * warm-up pass them (Node keys its compile cache by the V8 flags that change compiled code), only PATH and `env`.
 */
async function runBin(script: string, args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [...SERVER_NODE_FLAGS, path.join(BIN, script), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });
}

/** Node's own account (NODE_DEBUG_NATIVE=COMPILE_CACHE) of each TypeScript module's stripped code: from the cache or not. */
function transpileCacheLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.includes('transpile cache for StrippedTypeScript'));
}

describe('bin/keyward.js, the keyward entry', () => {
  let work: string;
  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'keyward-entry-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('after the install’s warm-up, loads the server without type-stripping one module: each comes from the compile cache', async () => {
    const cache = path.join(work, 'compile-cache');
    await runBin('warm-compile-cache.js', [], { NODE_COMPILE_CACHE: cache });
    expect((await readdir(cache)).length).toBeGreaterThan(0);

    // `migrate` loads the local commands and the whole server, as `serve` does, and exits.
    const { stdout, stderr } = await runBin('keyward.js', ['migrate'], {
      NODE_COMPILE_CACHE: cache,
      NODE_DEBUG_NATIVE: 'COMPILE_CACHE',
      KEYWARD_DATA_DIR: path.join(work, 'data'),
    });
    expect(stdout).toContain('sqlite database is at the latest migration');
    const lines = transpileCacheLines(stderr);
    expect(lines.some((line) => line.includes('/packages/server/src/app.ts'))).toBe(true);
    expect(lines.filter((line) => !line.endsWith('success'))).toEqual([]);
  });

  it('without a warm cache, still runs the command (the cache only saves time and memory) and fills the cache', async () => {
    const cache = path.join(work, 'cold-cache');
    const first = await runBin('keyward.js', ['--version'], { NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
    expect(first.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(transpileCacheLines(first.stderr).filter((line) => line.endsWith('success'))).toEqual([]);

    const second = await runBin('keyward.js', ['--version'], { NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
    expect(second.stdout).toBe(first.stdout);
    const lines = transpileCacheLines(second.stderr);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((line) => !line.endsWith('success'))).toEqual([]);
  });

  it('runs with the compile cache turned off by NODE_DISABLE_COMPILE_CACHE, writing none', async () => {
    const cache = path.join(work, 'unused-cache');
    const { stdout } = await runBin('keyward.js', ['--version'], { NODE_COMPILE_CACHE: cache, NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    await expect(readdir(cache)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
