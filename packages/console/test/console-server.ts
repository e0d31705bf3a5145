// A real Keyward server for the browser tests: the server's test app on a
// fresh SQLite database, listening on 127.0.0.1 and serving the built console,
// with a keyward:verify client token to check secrets the console shows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { newKeyringEntry, parseKeyring } from '@keyward/core';
import { buildApp } from '../../server/src/app.ts';
import { loadConfig } from '../../server/src/config/config.ts';
import { openSqliteTestDatabase } from '../../server/src/storage/test-databases.ts';
import { OWNER_EMAIL, PASSWORD, createTestApp, json, passwordToken, type TestApp } from '../../server/src/testing/test-app.ts';
import { ensureConsoleBuilt } from '../scripts/build-console.ts';

/** A port free right now, so the server's public URL (and the invitation links it makes) can name it. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export interface ConsoleServer {
  t: TestApp;
  baseUrl: string;
  email: string;
  password: string;
  /** POST /api/v1/verify with the verify token, as a resource server would. */
  verify(token: string): Promise<{ valid: boolean; code?: string }>;
  /** Adds a member who accepted their invitation and holds one personal token with these settings. */
  addMemberWithToken(email: string, role: string, token: { name: string; scopes: string[] }): Promise<{ tokenId: string }>;
  /** Adds a member who accepted their invitation with PASSWORD. */
  addMember(email: string, role: string): Promise<void>;
  /** Adds resources of one type as the owner. */
  addResources(type: string, names: string[]): Promise<void>;
  /** The status of a POST made with a console session of this person (cookie and CSRF header, as the console sends it). */
  postWithSession(email: string, url: string, payload: Record<string, unknown>): Promise<number>;
  /** Adds an API client with one service token. */
  addClientWithToken(clientName: string, tokenName: string): Promise<void>;
  /** The fields each token.updated audit event of this token lists as changed, oldest first. */
  changedFields(tokenId: string): Promise<string[][]>;
  close(): Promise<void>;
}

export async function startConsoleServer(): Promise<ConsoleServer> {
  await ensureConsoleBuilt({ quiet: true });
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // Every sign-in of every test comes from 127.0.0.1: a per-IP limit fit for a browser run, not for the internet.
  const configDir = await mkdtemp(join(tmpdir(), 'keyward-console-test-'));
  const configFile = join(configDir, 'keyward.config.json');
  await writeFile(configFile, JSON.stringify({ rateLimits: { loginPerIp: { max: 1000, windowSeconds: 900 } } }));
  const t = await createTestApp(openSqliteTestDatabase, { env: { KEYWARD_PUBLIC_URL: baseUrl, KEYWARD_CONFIG: configFile } });
  // Browsers show times against the wall clock: start the server's clock there too.
  t.clock.advance(Date.now() - t.clock.now().getTime());
  await t.app.listen({ host: '127.0.0.1', port });

  // Set-up through a console session of the owner, so the owner has no personal token yet.
  const ownerSession = async () => {
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: OWNER_EMAIL, password: PASSWORD } });
    if (login.statusCode !== 200) throw new Error(`signing in failed: ${login.body}`);
    const cookie = login.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const headers = { cookie, 'x-csrf-token': json(login).csrfToken as string };
    return {
      async post(url: string, payload: Record<string, unknown>) {
        const response = await t.app.inject({ method: 'POST', url, headers, payload });
        if (response.statusCode !== 201) throw new Error(`POST ${url} failed: ${response.body}`);
        return json(response);
      },
      signOut: () => t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers }),
    };
  };
  const { post, signOut } = await ownerSession();
  await post('/api/v1/resources', { type: 'project', name: 'website' });
  await post('/api/v1/resources', { type: 'project', name: 'billing' });
  const client = await post('/api/v1/clients', { name: 'resource-server' });
  const verifier = await post(`/api/v1/clients/${client.id}/tokens`, { name: 'verifier', scopes: ['keyward:verify'] });
  // A second organization of the owner, for the switcher.
  await post('/api/v1/organizations', { name: 'Globex', slug: 'globex' });
  await signOut();

  async function addMember(email: string, role: string): Promise<void> {
    const session = await ownerSession();
    const invited = await session.post('/api/v1/members', { email, role });
    await session.signOut();
    const accepted = await t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', payload: { inviteToken: invited.inviteToken, password: PASSWORD } });
    if (accepted.statusCode !== 204) throw new Error(`accepting the invitation failed: ${accepted.body}`);
  }

  return {
    t,
    baseUrl,
    email: OWNER_EMAIL,
    password: PASSWORD,
    async verify(token) {
      const response = await fetch(`${baseUrl}/api/v1/verify`, {
        method: 'POST',
        headers: { authorization: `Bearer ${verifier.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
      if (response.status !== 200) throw new Error(`verify answered ${response.status}: ${await response.text()}`);
      return (await response.json()) as { valid: boolean; code?: string };
    },
    addMember,
    async addMemberWithToken(email, role, token) {
      await addMember(email, role);
      return { tokenId: (await passwordToken(t, token, email)).id };
    },
    async addResources(type, names) {
      const session = await ownerSession();
      for (const name of names) await session.post('/api/v1/resources', { type, name });
      await session.signOut();
    },
    async postWithSession(email, url, payload) {
      const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } });
      if (login.statusCode !== 200) throw new Error(`signing in failed: ${login.body}`);
      const headers = { cookie: login.cookies.map((c) => `${c.name}=${c.value}`).join('; '), 'x-csrf-token': json(login).csrfToken as string };
      const response = await t.app.inject({ method: 'POST', url, headers, payload });
      await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers });
      return response.statusCode;
    },
    async addClientWithToken(clientName, tokenName) {
      const session = await ownerSession();
      const created = await session.post('/api/v1/clients', { name: clientName });
      await session.post(`/api/v1/clients/${created.id}/tokens`, { name: tokenName, scopes: ['scans:read'] });
      await session.signOut();
    },
    async changedFields(tokenId) {
      const events = await t.context.deps.store.listAuditEvents({ organizationId: t.organizationId, limit: 100, targetId: tokenId, action: 'token.updated' });
      return events.sort((a, b) => a.at.getTime() - b.at.getTime()).map((event) => (event.details as { changed: string[] }).changed);
    },
    async close() {
      await t.close();
      await rm(configDir, { recursive: true, force: true });
    },
  };
}

export interface FirstRunServer {
  baseUrl: string;
  /** The one-time setup token `npm start` would print in its link. */
  setupToken: string;
  close(): Promise<void>;
}

/** A server on an empty database, as `npm start` runs it the very first time. */
export async function startFirstRunServer(): Promise<FirstRunServer> {
  await ensureConsoleBuilt({ quiet: true });
  const database = await openSqliteTestDatabase();
  const config = loadConfig({ LOG_LEVEL: 'info', KEYWARD_CONFIG: '' }, '/nonexistent-keyward-test-dir');
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
  const setupToken = 'first-run-setup-token-0123456789';
  const { app } = await buildApp({ config, database, keyring: parseKeyring(newKeyringEntry('v1')), setupToken, logStream: quiet });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    baseUrl: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    setupToken,
    async close() {
      await app.close();
      await database.close();
    },
  };
}
