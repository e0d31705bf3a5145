// Keyward replicas as real child processes (`keyward serve` on Node 24), for
// the multi-replica suite. Every child started here is killed when the test
// process exits, even after a failed test or a crash, so none outlives the run.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../../../cli/bin/keyward.js', import.meta.url));
const START_TIMEOUT_MS = 60_000;

export interface Replica {
  readonly name: string;
  /** `http://127.0.0.1:<port>`, the port the replica chose (PORT=0). */
  readonly url: string;
  readonly pid: number;
  /** Every stdout and stderr line so far (JSON log lines, mostly). */
  readonly logs: string[];
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
let isExitHookInstalled = false;

function killAllOnExit(): void {
  if (isExitHookInstalled) return;
  isExitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL needs no waiting.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** Kills every replica still running (SIGKILL) and waits for them: for afterAll. */
export async function killAllReplicas(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/**
 * Starts `keyward serve` with this environment (nothing inherited but PATH)
 * and resolves once it listens.
 *
 * @example
 * const a = await startReplica('a', { DATABASE_URL, REDIS_URL, KEYWARD_SECRETS, HOST: '127.0.0.1', PORT: '0' }, workDir);
 * await fetch(`${a.url}/readyz`);
 * await a.stop('SIGTERM');
 */
export function startReplica(name: string, env: Record<string, string>, cwd: string): Promise<Replica> {
  killAllOnExit();
  const child = spawn(process.execPath, [CLI, 'serve'], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const logs: string[] = [];
  let isStopping = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      // A replica that dies on its own (not stopped, not killed by a test) says why, so a failing test that meets its closed sockets can be explained.
      if (!isStopping && signal !== 'SIGKILL' && code !== 0) console.error(`replica ${name} exited by itself (${code ?? signal}); its last log lines:\n${logs.slice(-30).join('\n')}`);
      resolve({ code, signal });
    });
  });
  return new Promise<Replica>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`replica ${name} did not listen within ${START_TIMEOUT_MS} ms:\n${logs.join('\n')}`));
    }, START_TIMEOUT_MS);
    const onLine = (line: string) => {
      logs.push(line);
      const listening = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (!listening?.[1] || !line.includes('Keyward')) return;
      clearTimeout(timer);
      resolve({
        name,
        url: listening[1],
        pid: child.pid as number,
        logs,
        exited,
        stop(signal = 'SIGTERM') {
          isStopping = true;
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim() !== '') onLine(line);
      });
    }
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`replica ${name} exited (${code ?? signal}) before listening:\n${logs.join('\n')}`));
    });
  });
}
