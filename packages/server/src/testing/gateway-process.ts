// Real gateway binaries (nginx, Caddy) for the tests that run the docs'
// configurations (examples/gateways, the nginx upstream of docs/scaling.md)
// and for `npm run bench`: find them, start them on 127.0.0.1 with a
// configuration in a temporary directory, wait until they listen, and stop them.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * The binary's path: on PATH, or in the usual system directories (Debian's
 * nginx is /usr/sbin/nginx, which a non-root PATH often lacks).
 */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

/** A port nobody listens on right now (the gateways cannot be told to pick one). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface GatewayProcess {
  /** Where the configuration, logs and state live. */
  dir: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** A temporary directory for one gateway, readable by the workers nginx starts as another user when run as root. */
export async function gatewayDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `keyward-${name}-`));
  await chmod(dir, 0o755);
  return dir;
}

/**
 * Starts `binary args` and resolves once it accepts connections on `port`;
 * rejects with its output if it exits or does not listen within 15 s.
 */
export async function startGateway(dir: string, binary: string, args: string[], port: number, env: Record<string, string> = {}): Promise<GatewayProcess> {
  let output = '';
  const child: ChildProcess = spawn(binary, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk) => (output += String(chunk)));
  child.stderr?.on('data', (chunk) => (output += String(chunk)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  child.once('error', (error) => (output += `\n${error.message}`));
  const process_: GatewayProcess = {
    dir,
    output: () => output,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (exited || Date.now() > deadline) {
      await process_.stop();
      throw new Error(`${binary} ${exited ? 'exited' : 'did not listen'} on 127.0.0.1:${port}:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process_;
}

/**
 * Runs nginx in the foreground with `http` (server and upstream blocks) as
 * its whole `http` context, listening on `port`: everything nginx writes
 * (pid, temp files) stays in its own temporary directory, errors go to its
 * stderr, and stop() ends the process and removes the directory.
 *
 * @example
 * const proxy = await startNginx(findBinary('nginx')!, `server { listen 127.0.0.1:${port}; … }`, port);
 */
export async function startNginx(binary: string, http: string, port: number): Promise<GatewayProcess> {
  const dir = await gatewayDir('nginx');
  const main = `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${http}
}
`;
  await writeFile(join(dir, 'nginx.conf'), main);
  return startGateway(dir, binary, ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], port);
}
