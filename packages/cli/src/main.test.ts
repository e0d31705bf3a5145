// The keyward command as users run it: a child process on this Node, in a
// temp working directory with a temp data dir and a clean environment.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newKeyringEntry, parseKeyring } from '@keyward/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectOneLineError, freePort, killStartedClis, startCli, type Finished } from './testing/cli-process.ts';

// Two init processes in a row, each migrating a database and hashing a password with argon2id,
// outlast the default 30 s on a loaded two-core machine.
const TWO_PROCESSES_MS = 90_000;

let workDir: string;
let dataDir: string;

beforeEach(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'keyward-cli-'));
  dataDir = path.join(workDir, 'data');
});

afterEach(() => {
  killStartedClis();
  rmSync(workDir, { recursive: true, force: true });
});

/** Starts `keyward <args>` in the temp working directory with the temp data dir. */
function start(args: string[], env: Record<string, string> = {}) {
  return startCli(args, { cwd: workDir, env: { HOME: workDir, KEYWARD_DATA_DIR: dataDir, ...env } });
}

function run(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return start(args, env).finished;
}

/** Resolves once `text` appears on stdout; rejects if the process ends first. */
function waitForOutput(started: ReturnType<typeof start>, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (started.output().includes(text)) {
        started.child.stdout?.off('data', check);
        resolve();
      }
    };
    started.child.stdout?.on('data', check);
    started.finished.then((result) => reject(new Error(`keyward exited (${result.code}) before printing "${text}"\n${result.stdout}\n${result.stderr}`)), reject);
    check();
  });
}

describe('keyward', () => {
  it('--help lists the commands and exits 0', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: keyward <command>');
    for (const command of ['serve', 'migrate', 'init', 'secrets new', 'token create', 'token list', 'token get', 'token rotate', 'token revoke', 'verify']) expect(result.stdout).toMatch(new RegExp(`^\\s+${command}\\s`, 'm'));
    expect(result.stderr).toBe('');
  });

  it('exits 2 with one line for an unknown command', async () => {
    const result = await run(['frobnicate']);
    expect(result.code).toBe(2);
    expectOneLineError(result, /unknown command "frobnicate"/);
    expect(result.stdout).toBe('');
  });

  it('exits 2 with one line for an unknown option', async () => {
    const result = await run(['init', '--email', 'owner@example.com', '--colour', 'blue']);
    expect(result.code).toBe(2);
    expectOneLineError(result, /--colour/);
    expect(existsSync(dataDir)).toBe(false);
  });

  describe('secrets new', () => {
    it('prints a v1 keyring entry that parseKeyring accepts', async () => {
      const result = await run(['secrets', 'new']);
      expect(result.code).toBe(0);
      const entry = result.stdout.trim();
      expect(result.stdout).toBe(`${entry}\n`);
      expect(entry).toMatch(/^v1:[A-Za-z0-9_-]{43}$/);
      expect(parseKeyring(entry).current.version).toBe('v1');
    });

    it('prints the next version after the entries in KEYWARD_SECRETS', async () => {
      const first = (await run(['secrets', 'new'])).stdout.trim();
      const result = await run(['secrets', 'new'], { KEYWARD_SECRETS: first });
      expect(result.code).toBe(0);
      const entry = result.stdout.trim();
      expect(entry).toMatch(/^v2:[A-Za-z0-9_-]{43}$/);
      expect(parseKeyring(`${entry},${first}`).all.map((secret) => secret.version)).toEqual(['v2', 'v1']);
      expect(entry).not.toContain(first.slice(3));
    });

    it('prints the next version after the secret generated into the data dir, when KEYWARD_SECRETS is unset', async () => {
      expect((await run(['init', '--email', 'owner@example.com', '--password', 'a long enough password'])).code).toBe(0);
      const generated = readFileSync(path.join(dataDir, 'secrets'), 'utf8').trim();
      const result = await run(['secrets', 'new']);
      expect(result.code).toBe(0);
      const entry = result.stdout.trim();
      expect(parseKeyring(`${entry},${generated}`).all.map((secret) => secret.version)).toEqual(['v2', 'v1']);
    });

    it('exits 1 naming KEYWARD_SECRETS, without echoing it, when it is not a keyring', async () => {
      const result = await run(['secrets', 'new'], { KEYWARD_SECRETS: 'v1:c2VjcmV0LW1hdGVyaWFs' });
      expect(result.code).toBe(1);
      expectOneLineError(result, /^keyward: KEYWARD_SECRETS: /);
      expect(result.stderr).not.toContain('c2VjcmV0LW1hdGVyaWFs');
      expect(result.stdout).toBe('');
    });

    it('exits 2 for a bad --version label', async () => {
      const result = await run(['secrets', 'new', '--version', 'v 3']);
      expect(result.code).toBe(2);
      expectOneLineError(result, /--version/);
    });
  });

  it('exits 2 with one line when serve or migrate get an option they do not take', async () => {
    for (const command of ['serve', 'migrate']) {
      const result = await run([command, '--port', '1']);
      expect(result.code, command).toBe(2);
      expectOneLineError(result, /--port/);
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  describe('migrate', () => {
    it('creates and migrates the SQLite database in KEYWARD_DATA_DIR and exits 0', async () => {
      const result = await run(['migrate']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('sqlite database is at the latest migration');
      expect(existsSync(path.join(dataDir, 'keyward.db'))).toBe(true);
      expect((await run(['migrate'])).code).toBe(0);
    });

    it('exits 1 with one line naming PORT when PORT is not a number', async () => {
      const result = await run(['migrate'], { PORT: 'eighty' });
      expect(result.code).toBe(1);
      expectOneLineError(result, /^keyward: PORT: /);
      expect(existsSync(dataDir)).toBe(false);
    });
  });

  describe('init', () => {
    it('creates the first organization and owner, and refuses a second time with one line and exit 1', async () => {
      const created = await run(['init', '--email', 'Owner@Example.com', '--password', 'a long enough password', '--org-slug', 'acme']);
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(/^keyward: created organization "acme" \(org_[0-9A-Za-z]+\) owned by owner@example\.com\n$/);
      // The token-hashing secret was generated on the way, private to its owner.
      expect(statSync(path.join(dataDir, 'secrets')).mode & 0o777).toBe(0o600);

      const again = await run(['init', '--email', 'other@example.com', '--password', 'another long password']);
      expect(again.code).toBe(1);
      expectOneLineError(again, /already set up/);
    }, TWO_PROCESSES_MS);

    it('exits 1 with one line for an email that is not one, creating nobody', async () => {
      const result = await run(['init', '--email', 'not-an-email', '--password', 'a long enough password']);
      expect(result.code).toBe(1);
      expectOneLineError(result, /email: is not an email address/);
      expect((await run(['init', '--email', 'owner@example.com', '--password', 'a long enough password'])).code).toBe(0);
    }, TWO_PROCESSES_MS);

    it('exits 2 without --email', async () => {
      const result = await run(['init', '--password', 'a long enough password']);
      expect(result.code).toBe(2);
      expectOneLineError(result, /--email/);
    });

    it('exits 2 for a password under 12 characters, without echoing it', async () => {
      const result = await run(['init', '--email', 'owner@example.com', '--password', 'hunter2']);
      expect(result.code).toBe(2);
      expectOneLineError(result, /12 characters/);
      expect(result.stderr).not.toContain('hunter2');
    });
  });

  describe('serve', () => {
    it('starts, answers /healthz, and exits 0 on SIGTERM', async () => {
      const port = await freePort();
      const server = start(['serve'], { PORT: String(port), HOST: '127.0.0.1' });
      await waitForOutput(server, `listening on http://127.0.0.1:${port}`);

      const health = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) });
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      // First run on an empty database: a setup link on the terminal and a generated secret.
      expect(server.output()).toContain(`http://127.0.0.1:${port}/setup#`);
      expect(server.output()).toContain('KEYWARD_SECRETS is not set');
      expect(existsSync(path.join(dataDir, 'secrets'))).toBe(true);

      server.child.kill('SIGTERM');
      const result = await server.finished;
      expect(result.signal).toBeNull();
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('shutting down');
    });

    it('exits 1 with one line when the port is taken', async () => {
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      try {
        const port = (blocker.address() as { port: number }).port;
        const result = await run(['serve'], { PORT: String(port), HOST: '127.0.0.1' });
        expect(result.code).toBe(1);
        expectOneLineError(result, new RegExp(`^keyward: PORT: 127\\.0\\.0\\.1:${port} is already in use by another process; stop it, or choose another PORT \\(or HOST\\)\n$`));
        // No setup link pointing at the other process.
        expect(result.stdout).not.toContain('/setup#');
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()));
      }
    });

    it('exits 1 with one line naming KEYWARD_DATA_DIR when it cannot be created', async () => {
      writeFileSync(path.join(workDir, 'a-file'), 'x');
      const result = await run(['serve'], { PORT: '0', KEYWARD_DATA_DIR: path.join(workDir, 'a-file', 'data') });
      expect(result.code).toBe(1);
      expectOneLineError(result, /^keyward: KEYWARD_DATA_DIR: cannot keep the database in .*a-file\/data/);
    });

    it('three processes started together on one empty data dir with KEYWARD_ADMIN_EMAIL all serve, with one owner', async () => {
      const env = { HOST: '127.0.0.1', KEYWARD_ADMIN_EMAIL: 'admin@example.com', KEYWARD_ADMIN_PASSWORD: 'correct horse battery staple', KEYWARD_SECRETS: newKeyringEntry('v1') };
      const ports = [await freePort(), await freePort(), await freePort()];
      const servers = ports.map((port) => start(['serve'], { ...env, PORT: String(port) }));
      await Promise.all(servers.map((server, index) => waitForOutput(server, `listening on http://127.0.0.1:${ports[index]}`)));
      for (const port of ports) expect((await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
      const login = await fetch(`http://127.0.0.1:${ports[2]}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: env.KEYWARD_ADMIN_EMAIL, password: env.KEYWARD_ADMIN_PASSWORD }),
        signal: AbortSignal.timeout(10_000),
      });
      expect(login.status).toBe(200);
      const created = servers.map((server) => server.output()).filter((output) => output.includes('"msg":"created the first owner from KEYWARD_ADMIN_EMAIL"'));
      expect(created).toHaveLength(1);
      for (const server of servers) server.child.kill('SIGTERM');
      for (const server of servers) expect((await server.finished).code).toBe(0);
    }, 90_000);
  });
});
