// A real Keyward server for the browser tests: the server's test app on a
// fresh SQLite database, listening on 127.0.0.1 and serving the built console,
// with a keyward:verify client token to check secrets the console shows.
import type { AddressInfo } from 'node:net';
import { openSqliteTestDatabase } from '../../server/src/storage/test-databases.ts';
import { OWNER_EMAIL, PASSWORD, createTestApp, json, type TestApp } from '../../server/src/testing/test-app.ts';
import { ensureConsoleBuilt } from '../scripts/build-console.ts';

export interface ConsoleServer {
  t: TestApp;
  baseUrl: string;
  email: string;
  password: string;
  /** POST /api/v1/verify with the verify token, as a resource server would. */
  verify(token: string): Promise<{ valid: boolean; code?: string }>;
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
  const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: OWNER_EMAIL, password: PASSWORD } });
  if (login.statusCode !== 200) throw new Error(`signing in failed: ${login.body}`);
  const cookie = login.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const headers = { cookie, 'x-csrf-token': json(login).csrfToken as string };
  const post = async (url: string, payload: Record<string, unknown>) => {
    const response = await t.app.inject({ method: 'POST', url, headers, payload });
    if (response.statusCode !== 201) throw new Error(`POST ${url} failed: ${response.body}`);
    return json(response);
  };
  await post('/api/v1/resources', { type: 'project', name: 'website' });
  await post('/api/v1/resources', { type: 'project', name: 'billing' });
  const client = await post('/api/v1/clients', { name: 'resource-server' });
  const verifier = await post(`/api/v1/clients/${client.id}/tokens`, { name: 'verifier', scopes: ['keyward:verify'] });
  // A second organization of the owner, for the switcher.
  await post('/api/v1/organizations', { name: 'Globex', slug: 'globex' });
  await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers });

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
    close: () => t.close(),
  };
}
