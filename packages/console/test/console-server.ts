// A real Keyward server for the browser tests: the server's test app on a
// fresh SQLite database, listening on 127.0.0.1 and serving the built console,
// with a keyward:verify client token to check secrets the console shows.
import type { AddressInfo } from 'node:net';
import { openSqliteTestDatabase } from '../../server/src/storage/test-databases.ts';
import { OWNER_EMAIL, PASSWORD, createTestApp, json, passwordToken, type TestApp } from '../../server/src/testing/test-app.ts';
import { ensureConsoleBuilt } from '../scripts/build-console.ts';

export interface ConsoleServer {
  t: TestApp;
  baseUrl: string;
  email: string;
  password: string;
  /** POST /api/v1/verify with the verify token, as a resource server would. */
  verify(token: string): Promise<{ valid: boolean; code?: string }>;
  /** Adds a member who accepted their invitation and holds one personal token with these settings. */
  addMemberWithToken(email: string, role: string, token: { name: string; scopes: string[] }): Promise<{ tokenId: string }>;
  /** Adds an API client with one service token. */
  addClientWithToken(clientName: string, tokenName: string): Promise<void>;
  /** The fields each token.updated audit event of this token lists as changed, oldest first. */
  changedFields(tokenId: string): Promise<string[][]>;
  close(): Promise<void>;
}

export async function startConsoleServer(): Promise<ConsoleServer> {
  await ensureConsoleBuilt({ quiet: true });
  const t = await createTestApp(openSqliteTestDatabase);
  // Browsers show times against the wall clock: start the server's clock there too.
  t.clock.advance(Date.now() - t.clock.now().getTime());
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;

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
    async addMemberWithToken(email, role, token) {
      const session = await ownerSession();
      const invited = await session.post('/api/v1/members', { email, role });
      await session.signOut();
      const accepted = await t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', payload: { inviteToken: invited.inviteToken, password: PASSWORD } });
      if (accepted.statusCode !== 204) throw new Error(`accepting the invitation failed: ${accepted.body}`);
      return { tokenId: (await passwordToken(t, token, email)).id };
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
    close: () => t.close(),
  };
}
