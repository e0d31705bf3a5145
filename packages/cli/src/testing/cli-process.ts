// The keyward command as users run it: a child process on this Node, with
// nothing from the test's own environment but PATH.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { expect } from 'vitest';

// The installed entry (bin/keyward.js), so the tests run what `keyward` and `npm start` run.
const MAIN = path.join(import.meta.dirname, '..', '..', 'bin', 'keyward.js');
// Generous: several processes starting at once on a shared two-core machine take a while.
const CHILD_TIMEOUT_MS = 60_000;

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface StartedCli {
  child: ChildProcess;
  finished: Promise<Finished>;
  output: () => string;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
}

const children = new Set<ChildProcess>();

/** Starts `keyward <args>`. */
export function startCli(args: string[], options: CliOptions): StartedCli {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  if (options.input !== undefined) child.stdin?.end(options.input);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keyward ${args.join(' ')} did not finish within ${CHILD_TIMEOUT_MS} ms\n${stdout}\n${stderr}`));
    }, CHILD_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, finished, output: () => stdout };
}

/** Kills whatever a test left running. */
export function killStartedClis(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}

/** A one-line `keyward: …` reason on stderr, nothing else. */
export function expectOneLineError(result: Finished, pattern: RegExp): void {
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(/^keyward: /);
  expect(result.stderr).toMatch(pattern);
}

/** A loopback port nothing listens on (at the moment of asking). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}
