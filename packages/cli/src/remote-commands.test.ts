// keyward token … and keyward verify as users run them: child processes
// against a real Keyward server listening on loopback.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateToken } from '@keyward/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startKeywardServer, type KeywardTestServer } from '../../sdk/src/testing/keyward-server.ts';
import { bearer, json, ownerToken } from '../../server/src/testing/test-app.ts';
import { expectOneLineError, freePort, killStartedClis, startCli, type Finished } from './testing/cli-process.ts';

const SECRET = /kw_(?:pat|svc)_[0-9A-Za-z]{49}/;
// A lifecycle is a dozen processes in a row on a shared machine.
const LONG_MS = 180_000;

let server: KeywardTestServer;
/** The owner's management token; it also holds the demo scopes, since a token only grants scopes it holds. */
let manager: string;
let workDir: string;
/** Every stderr written, to check that no secret ever reached it. */
const stderrs: string[] = [];
/** Every secret the tests handled. */
const secrets = new Set<string>();

beforeAll(async () => {
  server = await startKeywardServer();
  workDir = mkdtempSync(path.join(tmpdir(), 'keyward-cli-remote-'));
  manager = await ownerToken(server.t, { name: 'cli manager', scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'scans:read', 'scans:write'] });
  secrets.add(server.owner).add(server.verifyToken).add(manager);
});

afterEach(() => killStartedClis());

afterAll(async () => {
  for (const stderr of stderrs) for (const secret of secrets) expect(stderr).not.toContain(secret);
  await server?.close();
  rmSync(workDir, { recursive: true, force: true });
});

interface RunOptions {
  /** The credential; the manager token unless given. */
  token?: string | null;
  input?: string;
  env?: Record<string, string>;
}

async function keyward(args: string[], options: RunOptions = {}): Promise<Finished> {
  const token = options.token === undefined ? manager : options.token;
  const env: Record<string, string> = { HOME: workDir, KEYWARD_URL: server.baseUrl, ...(token === null ? {} : { KEYWARD_TOKEN: token }), ...options.env };
  const result = await startCli(args, { cwd: workDir, env, ...(options.input !== undefined ? { input: options.input } : {}) }).finished;
  stderrs.push(result.stderr);
  return result;
}

/** Runs a command that must succeed quietly on stderr. */
async function succeed(args: string[], options: RunOptions = {}): Promise<string> {
  const result = await keyward(args, options);
  expect(result.stderr, `keyward ${args.join(' ')}`).toBe('');
  expect(result.code, `keyward ${args.join(' ')}`).toBe(0);
  return result.stdout;
}

function secretIn(stdout: string): string {
  const secret = SECRET.exec(stdout)?.[0];
  if (!secret) throw new Error(`no secret in:\n${stdout}`);
  secrets.add(secret);
  return secret;
}

const verifier = () => ({ token: server.verifyToken });

describe('keyward token and keyward verify against a server', () => {
  it(
    'take a token through create, list, get, rotate, verify and revoke',
    async () => {
      const created = await succeed(['token', 'create', '--name', 'ci deploy', '--scope', 'scans:read', '--expires-in-days', '30']);
      const secret = secretIn(created);
      expect(created).toMatch(/^Created personal token "ci deploy" \(tok_[0-9A-Za-z]+\), expires \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$/m);
      expect(created).toContain('Scopes: scans:read');
      expect(created).toContain(`\n    ${secret}\n`);
      expect(created).toContain('only time Keyward shows this secret');
      const id = /\((tok_[0-9A-Za-z]+)\)/.exec(created)?.[1] as string;

      const table = await succeed(['token', 'list']);
      const [header, ...rows] = table.trimEnd().split('\n');
      expect(header).toMatch(/^ID\s+NAME\s+HINT\s+KIND\s+STATUS\s+SCOPES\s+LAST USED\s+EXPIRES$/);
      const row = rows.find((line) => line.startsWith(id));
      expect(row).toMatch(new RegExp(`^${id}\\s+ci deploy\\s+kw_pat_\\S*${secret.slice(-4)}\\s+personal\\s+active\\s+scans:read\\s+never\\s+\\d{4}-`));
      expect(table).not.toContain(secret);

      const listed = JSON.parse(await succeed(['token', 'list', '--json']));
      expect(listed.nextCursor).toBeNull();
      expect(listed.items.find((token: any) => token.id === id)).toMatchObject({ name: 'ci deploy', kind: 'personal', status: 'active', scopes: ['scans:read'] });
      expect(JSON.stringify(listed)).not.toContain(secret);

      const shown = await succeed(['token', 'get', id]);
      expect(shown).toMatch(new RegExp(`^id:\\s+${id}$`, 'm'));
      expect(shown).toMatch(/^name:\s+ci deploy$/m);
      expect(shown).toMatch(/^status:\s+active$/m);
      expect(shown).toMatch(/^resources:\s+all its owner can access$/m);
      expect(JSON.parse(await succeed(['token', 'get', id, '--json']))).toMatchObject({ id, name: 'ci deploy', status: 'active' });

      const rotated = await succeed(['token', 'rotate', id, '--grace-seconds', '3600']);
      const newSecret = secretIn(rotated);
      expect(newSecret).not.toBe(secret);
      expect(rotated).toMatch(new RegExp(`^Rotated ${id} into tok_[0-9A-Za-z]+ "ci deploy"`, 'm'));
      expect(rotated).toContain('keeps working for 3600 s');
      const newId = new RegExp(`^Rotated ${id} into (tok_[0-9A-Za-z]+)`, 'm').exec(rotated)?.[1] as string;

      // The old secret, read from stdin, still works during the grace period; so does the new one.
      const old = await succeed(['verify', '-', '--scope', 'scans:read'], { ...verifier(), input: `${secret}\n` });
      expect(old).toMatch(/^VALID$/m);
      expect(old).toMatch(new RegExp(`^token:\\s+${id} "ci deploy"$`, 'm'));
      expect(old).toMatch(/^scopes:\s+scans:read$/m);
      const fresh = await succeed(['verify', newSecret], verifier());
      expect(fresh).toMatch(new RegExp(`^token:\\s+${newId} "ci deploy"$`, 'm'));

      expect(await succeed(['token', 'revoke', newId])).toBe(`Revoked ${newId}.\n`);
      const refused = await keyward(['verify', '-'], { ...verifier(), input: newSecret });
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('REVOKED: the token has been revoked\n');
      expect(refused.stderr).toBe('');
      expect(JSON.parse(await succeed(['token', 'get', newId, '--json'])).status).toBe('revoked');
    },
    LONG_MS,
  );

  it('rotate keeps its word: after the grace period the old secret is refused, and presenting it revokes the new one too', async () => {
    const { token: old, id } = await server.createToken({ name: 'short grace', scopes: ['scans:read'] });
    secrets.add(old);
    const rotated = await succeed(['token', 'rotate', id, '--grace-seconds', '60']);
    const fresh = secretIn(rotated);
    expect(await succeed(['verify', '-'], { ...verifier(), input: old })).toMatch(/^VALID$/m);

    server.t.clock.advance(61_000);
    const late = await keyward(['verify', '-'], { ...verifier(), input: old });
    expect(late.code).toBe(1);
    expect(late.stdout).toMatch(/^(?:REVOKED|EXPIRED): /);
    const after = await keyward(['verify', '-'], { ...verifier(), input: fresh });
    expect(after.code).toBe(1);
    expect(after.stdout).toBe('REVOKED: the token has been revoked\n');
  }, LONG_MS);

  it('verify exits 1 and prints INSUFFICIENT_SCOPE for a scope the token lacks, and the same code in --json', async () => {
    const { token } = await server.createToken({ name: 'reader', scopes: ['scans:read'] });
    secrets.add(token);
    const text = await keyward(['verify', token, '--scope', 'scans:write'], verifier());
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('INSUFFICIENT_SCOPE: the token lacks a required scope\n');
    expect(text.stderr).toBe('');
    const machine = await keyward(['verify', '-', '--scope', 'scans:write', '--json'], { ...verifier(), input: token });
    expect(machine.code).toBe(1);
    expect(JSON.parse(machine.stdout)).toEqual({ valid: false, code: 'INSUFFICIENT_SCOPE' });
  }, LONG_MS);

  it('verify checks a --require expression, and exits 2 before any request for a malformed one', async () => {
    const { token } = await server.createToken({ name: 'either', scopes: ['scans:read'] });
    secrets.add(token);
    expect(await succeed(['verify', token, '--require', 'scans:write OR scans:read', '--cost', '0'], verifier())).toMatch(/^VALID$/m);
    const malformed = await keyward(['verify', token, '--require', 'scans:read AND (scans:write'], { ...verifier(), env: { KEYWARD_URL: `http://127.0.0.1:${await freePort()}` } });
    expect(malformed.code).toBe(2);
    expectOneLineError(malformed, /^keyward: --require: /);
  }, LONG_MS);

  it('verify says MALFORMED for something that is not a token, and NOT_FOUND for a well-formed unknown one', async () => {
    const garbage = await keyward(['verify', 'not-a-token'], verifier());
    expect(garbage.code).toBe(1);
    expect(garbage.stdout).toMatch(/^MALFORMED: /);
    // Right shape and checksum, never issued.
    const unknown = await keyward(['verify', '-'], { ...verifier(), input: generateToken('kw_pat') });
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('NOT_FOUND: no such token in this organization\n');
  }, LONG_MS);

  it('list pages with --limit and prints the next cursor, and --all follows every cursor', async () => {
    for (const name of ['page one', 'page two', 'page three']) await server.createToken({ name });
    const first = await succeed(['token', 'list', '--limit', '2']);
    expect(first.trimEnd().split('\n').slice(1, 3)).toHaveLength(2);
    const cursor = /add --cursor (\S+) \(or --all for every page\)/.exec(first)?.[1];
    expect(cursor).toBeDefined();
    const second = await succeed(['token', 'list', '--limit', '2', '--cursor', cursor as string, '--json']);
    expect(JSON.parse(second).items).toHaveLength(2);

    const everything = JSON.parse(await succeed(['token', 'list', '--limit', '2', '--all', '--json']));
    expect(everything.nextCursor).toBeNull();
    const names = everything.items.map((token: any) => token.name);
    expect(names).toEqual(expect.arrayContaining(['page one', 'page two', 'page three']));
    expect(new Set(everything.items.map((token: any) => token.id)).size).toBe(names.length);
    const fromServer = await server.t.app.inject({ method: 'GET', url: '/api/v1/tokens?limit=100', headers: bearer(manager) });
    expect(everything.items.length).toBe(json(fromServer).items.length);
  }, LONG_MS);

  it('create --client makes a service token with a rate limit, quota and metadata, listed with --client', async () => {
    const client = await server.t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(manager), payload: { name: 'customer one' } });
    const clientId = json(client).id as string;
    const issued = JSON.parse(
      await succeed([
        'token', 'create', '--client', clientId, '--name', 'svc', '--scope', 'scans:read', '--rate-limit', '100/1m',
        '--remaining', '500', '--refill', '1000/daily', '--metadata', 'team=platform', '--allow-ip', '10.0.0.0/8', '--json',
      ]),
    );
    secrets.add(issued.token);
    expect(issued.token).toMatch(/^kw_svc_/);
    expect(issued).toMatchObject({
      name: 'svc',
      kind: 'client',
      owner: { type: 'client', id: clientId },
      rateLimit: { limit: 100, windowSeconds: 60 },
      remaining: 500,
      refill: { amount: 1000, interval: 'daily' },
      metadata: { team: 'platform' },
      allowedIps: ['10.0.0.0/8'],
    });
    const table = await succeed(['token', 'list', '--client', clientId]);
    expect(table).toMatch(new RegExp(`^${issued.id}\\s+svc\\s+kw_svc_\\S+\\s+client\\s+active\\s`, 'm'));
    expect(table).not.toContain(issued.token);
    const shown = await succeed(['token', 'get', issued.id]);
    expect(shown).toMatch(/^rate limit:\s+100 per 60 s$/m);
    expect(shown).toMatch(/^remaining:\s+500 \(refilled to 1000 daily\)$/m);
    expect(shown).toMatch(/^allowed IPs:\s+10\.0\.0\.0\/8$/m);
  }, LONG_MS);

  it('token get current shows the credential itself with its effective rights', async () => {
    const shown = await succeed(['token', 'get', 'current'], verifier());
    expect(shown).toMatch(/^kind:\s+client$/m);
    expect(shown).toMatch(/^effective scopes:\s+keyward:verify$/m);
  }, LONG_MS);

  it('reads the credential from --token-file instead of KEYWARD_TOKEN', async () => {
    const file = path.join(workDir, 'credential');
    writeFileSync(file, `${manager}\n`, { mode: 0o600 });
    expect(await succeed(['token', 'list', '--token-file', file], { token: null })).toMatch(/^ID\s+NAME/);
    const missing = await keyward(['token', 'list', '--token-file', path.join(workDir, 'nowhere')], { token: null });
    expect(missing.code).toBe(2);
    expectOneLineError(missing, /--token-file: cannot read .*nowhere \(ENOENT\)/);
  }, LONG_MS);

  it('exits 2 naming KEYWARD_TOKEN when there is no credential', async () => {
    const listing = await keyward(['token', 'list'], { token: null });
    expect(listing.code).toBe(2);
    expectOneLineError(listing, /^keyward: set KEYWARD_TOKEN \(or --token-file\) to a token with tokens:read\n$/);
    const verifying = await keyward(['verify', 'kw_pat_whatever'], { token: null });
    expect(verifying.code).toBe(2);
    expectOneLineError(verifying, /keyward:verify/);
    expect(verifying.stdout).toBe('');
  }, LONG_MS);

  it('exits 2 for an unknown flag, a missing value and a bad number, before any request', async () => {
    const unreachable = { env: { KEYWARD_URL: `http://127.0.0.1:${await freePort()}` } };
    const unknown = await keyward(['token', 'list', '--colour', 'blue'], unreachable);
    expect(unknown.code).toBe(2);
    expectOneLineError(unknown, /^keyward: Unknown option '--colour'; see --help\n$/);
    const missingName = await keyward(['token', 'create', '--scope', 'scans:read'], unreachable);
    expect(missingName.code).toBe(2);
    expectOneLineError(missingName, /--name/);
    const badDays = await keyward(['token', 'create', '--name', 'x', '--expires-in-days', 'soon'], unreachable);
    expect(badDays.code).toBe(2);
    expectOneLineError(badDays, /--expires-in-days must be a whole number/);
    const badRate = await keyward(['token', 'create', '--name', 'x', '--rate-limit', 'lots'], unreachable);
    expect(badRate.code).toBe(2);
    expectOneLineError(badRate, /--rate-limit must look like 100\/60s/);
    const unknownCommand = await keyward(['token', 'delete', 'tok_abc'], unreachable);
    expect(unknownCommand.code).toBe(2);
    expectOneLineError(unknownCommand, /unknown token command "delete"/);
  }, LONG_MS);

  it('refuses a --token flag, and a secret where an id belongs, without echoing either', async () => {
    const { token } = await server.createToken({ name: 'pasted' });
    secrets.add(token);
    const flag = await keyward(['token', 'list', `--token=${token}`], { token: null });
    expect(flag.code).toBe(2);
    expectOneLineError(flag, /no --token flag.*KEYWARD_TOKEN.*--token-file/);
    const asId = await keyward(['token', 'revoke', token]);
    expect(asId.code).toBe(2);
    expectOneLineError(asId, /takes the token's id \(tok_…\), not its secret/);
    for (const result of [flag, asId]) expect(`${result.stdout}${result.stderr}`).not.toContain(token);
  }, LONG_MS);

  it('exits 1 with one line when the server cannot be reached', async () => {
    const port = await freePort();
    const result = await keyward(['token', 'list'], { env: { KEYWARD_URL: `http://127.0.0.1:${port}` } });
    expect(result.code).toBe(1);
    expectOneLineError(result, new RegExp(`^keyward: cannot reach the Keyward server at http://127\\.0\\.0\\.1:${port}: connection refused \\(is the server running\\?\\); check --url or KEYWARD_URL\n$`));
    expect(result.stdout).toBe('');
  }, LONG_MS);

  it('does not follow a redirect, so neither the credential nor the token goes elsewhere, and says so in one line', async () => {
    const elsewhere: string[] = [];
    const listen = async (handle: (request: IncomingMessage, response: ServerResponse) => void) => {
      const http = createServer(handle);
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      return { http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
    };
    const trap = await listen((request, response) => {
      elsewhere.push(`${request.method} ${request.url} ${request.headers.authorization ?? ''}`);
      response.end('{}');
    });
    const redirecting = await listen((request, response) => {
      if (request.url?.startsWith('/html/')) response.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
      else response.writeHead(307, { location: `${trap.url}${request.url}` }).end();
    });
    try {
      const { token } = await server.createToken({ name: 'not for elsewhere' });
      secrets.add(token);
      const redirected = await keyward(['verify', token], { ...verifier(), env: { KEYWARD_URL: redirecting.url } });
      expect(redirected.code).toBe(1);
      expectOneLineError(redirected, new RegExp(`^keyward: the server at ${redirecting.url} redirects to ${trap.url}/api/v1/verify; set --url or KEYWARD_URL`));
      expect(elsewhere).toEqual([]);

      const notKeyward = await keyward(['token', 'list'], { env: { KEYWARD_URL: `${redirecting.url}/html/` } });
      expect(notKeyward.code).toBe(1);
      expectOneLineError(notKeyward, /answered 200 without JSON; is --url a Keyward server\?/);
    } finally {
      for (const { http } of [trap, redirecting]) await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  }, LONG_MS);

  it('exits 1 with the problem title, detail and code when the server refuses', async () => {
    const missing = await keyward(['token', 'get', 'tok_doesnotexist']);
    expect(missing.code).toBe(1);
    expectOneLineError(missing, /^keyward: Not found: .*\(not_found\)\n$/);

    const badCredential = await keyward(['token', 'list'], { token: `kw_pat_${'x'.repeat(49)}` });
    expect(badCredential.code).toBe(1);
    expectOneLineError(badCredential, /^keyward: Authentication required: .*\(unauthenticated\); check the token in KEYWARD_TOKEN/);
    expect(badCredential.stderr).not.toContain('x'.repeat(49));

    const { token: reader } = await server.createToken({ name: 'not a verifier', scopes: ['scans:read'] });
    secrets.add(reader);
    const notVerifier = await keyward(['verify', reader], { token: reader });
    expect(notVerifier.code).toBe(1);
    expectOneLineError(notVerifier, /\(insufficient_scope\)/);

    const unknownScope = await keyward(['token', 'create', '--name', 'wishful', '--scope', 'moon:land']);
    expect(unknownScope.code).toBe(1);
    expectOneLineError(unknownScope, /^keyward: Validation failed: .*moon:land.*\(validation_failed\)\n$/);
  }, LONG_MS);

  it('--help of each command exits 0 and names its options', async () => {
    const helps: Array<[string[], RegExp]> = [
      [['token', '--help'], /keyward token <command>/],
      [['token', 'create', '--help'], /--expires-in-days <days>/],
      [['token', 'list', '-h'], /--all\s+follow the cursors/],
      [['token', 'get', '--help'], /"current"/],
      [['token', 'rotate', '--help'], /--grace-seconds <s>/],
      [['token', 'revoke', '--help'], /cannot be undone/],
      [['verify', '--help'], /keeps it out of your shell\s+history/],
    ];
    for (const [args, pattern] of helps) expect(await succeed(args, { token: null }), args.join(' ')).toMatch(pattern);
  }, LONG_MS);
});
