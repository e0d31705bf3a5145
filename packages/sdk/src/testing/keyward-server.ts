// A real Keyward server for the SDK's tests: the server's own test app on a
// fresh SQLite database, listening on 127.0.0.1, with a keyward:verify
// service token. Test code only: the SDK itself never imports the server.
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { newKeyringEntry, parseKeyring } from '@keyward/core';
import { buildApp } from '../../../server/src/app.ts';
import { migrateToLatest, openDatabase, type Database } from '../../../server/src/storage/index.ts';
import { bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../../../server/src/testing/test-app.ts';

export interface KeywardTestServer {
  t: TestApp;
  baseUrl: string;
  /** A keyward:verify service token for verifiers. */
  verifyToken: string;
  /** An owner token that manages tokens and resources. */
  owner: string;
  /** A personal token of the owner with these fields (scopes, expiresInDays, rateLimit, remaining, resources…). */
  createToken(body?: Record<string, unknown>): Promise<{ token: string; id: string }>;
  createResource(name: string): Promise<string>;
  revoke(tokenId: string): Promise<void>;
  patch(tokenId: string, body: Record<string, unknown>): Promise<void>;
  /** Closes the HTTP app (ending open event streams) and builds and listens a new one on the same port and database. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function openSqlite(): Promise<Database> {
  const dataDir = await mkdtemp(join(tmpdir(), 'keyward-sdk-test-'));
  const database = await openDatabase({ dataDir });
  await migrateToLatest(database);
  return {
    ...database,
    async close() {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** `env`: server settings beyond the test defaults, e.g. KEYWARD_TRUSTED_PROXIES for a gateway in front. */
export async function startKeywardServer(options: { env?: Record<string, string> } = {}): Promise<KeywardTestServer> {
  const keyring = parseKeyring(newKeyringEntry('v1'));
  const t = await createTestApp(openSqlite, { keyring, ...(options.env ? { env: options.env } : {}) });
  // The verifier caps a cached answer at the token's expiry by the wall clock: start the server's clock there too.
  t.clock.advance(Date.now() - t.clock.now().getTime());
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (t.app.server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  const owner = await ownerToken(t, { scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'keyward:verify'] });
  let current = t;
  const inject = (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
    current.app.inject({ method, url, headers: bearer(owner), ...(payload ? { payload } : {}) });
  const client = await inject('POST', '/api/v1/clients', { name: 'resource-server' });
  if (client.statusCode !== 201) throw new Error(`creating a client failed: ${client.body}`);
  const issued = await inject('POST', `/api/v1/clients/${json(client).id}/tokens`, { name: 'verifier', scopes: ['keyward:verify'] });
  if (issued.statusCode !== 201) throw new Error(`issuing the verify token failed: ${issued.body}`);

  const server: KeywardTestServer = {
    t,
    baseUrl,
    verifyToken: json(issued).token,
    owner,
    async createToken(body = {}) {
      const created = await passwordToken(current, { scopes: ['scans:read'], ...body });
      return { token: created.token, id: created.id };
    },
    async createResource(name) {
      const response = await inject('POST', '/api/v1/resources', { type: 'project', name });
      if (response.statusCode !== 201) throw new Error(`creating a resource failed: ${response.body}`);
      return json(response).id as string;
    },
    async revoke(tokenId) {
      const response = await inject('DELETE', `/api/v1/tokens/${tokenId}`);
      if (response.statusCode !== 204) throw new Error(`revoking failed: ${response.body}`);
    },
    async patch(tokenId, body) {
      const response = await inject('PATCH', `/api/v1/tokens/${tokenId}`, body);
      if (response.statusCode !== 200) throw new Error(`patching failed: ${response.body}`);
    },
    async restart() {
      await server.t.app.close();
      const logStream = new Writable({ write: (_chunk, _encoding, done) => done() });
      const { app, context } = await buildApp({ config: t.config, database: t.database, keyring, now: t.clock.now, logStream });
      await app.listen({ host: '127.0.0.1', port });
      current = { ...current, app, context };
      server.t = current;
    },
    async close() {
      await server.t.app.close();
      await server.t.database.close();
    },
  };
  return server;
}
