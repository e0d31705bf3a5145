import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { bootstrapOwner, newKeyringEntry, parseKeyring } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config/config.ts';
import { openSqliteTestDatabase } from '../../storage/test-databases.ts';
import { createTestApp, expectProblem, type TestApp } from '../../testing/test-app.ts';

const INDEX = '<!doctype html><html><head><script type="module" src="/console-assets/index-abc123.js"></script></head><body><div id="root"></div></body></html>';
const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('the web console at /', () => {
  let t: TestApp;
  let consoleDir: string;
  beforeAll(async () => {
    // A console build as Vite lays it out: index.html and hashed assets.
    consoleDir = await mkdtemp(join(tmpdir(), 'keyward-console-'));
    await mkdir(join(consoleDir, 'console-assets'));
    await writeFile(join(consoleDir, 'index.html'), INDEX);
    await writeFile(join(consoleDir, 'console-assets', 'index-abc123.js'), 'console.log("console");');
    await writeFile(join(consoleDir, '.build-stamp'), 'stamp');
    t = await createTestApp(openSqliteTestDatabase, { consoleDir });
  });
  afterAll(async () => {
    await t.close();
    await rm(consoleDir, { recursive: true, force: true });
  });

  it('answers index.html at / under a policy that allows only same-origin scripts', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/html');
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.body).toBe(INDEX);
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp.split(';').find((directive) => directive.trim().startsWith('script-src'))).not.toContain('unsafe');
  });

  it('answers index.html for client routes a browser navigates to, so a reload keeps the page', async () => {
    for (const url of ['/tokens', '/tokens?status=active', '/members/usr_1', '/invite', '/resources']) {
      const response = await t.app.inject({ method: 'GET', url, headers: HTML });
      expect(response.statusCode, url).toBe(200);
      expect(response.body).toBe(INDEX);
    }
  });

  it('serves hashed assets for a year, and nothing else from the build folder', async () => {
    const asset = await t.app.inject({ method: 'GET', url: '/console-assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toContain('javascript');
    expect(asset.headers['cache-control']).toContain('immutable');
    expectProblem(await t.app.inject({ method: 'GET', url: '/.build-stamp' }), 404, 'not_found');
    expect((await t.app.inject({ method: 'GET', url: '/.build-stamp', headers: HTML })).body).toBe(INDEX);
    expectProblem(await t.app.inject({ method: 'GET', url: '/console-assets/missing.js' }), 404, 'not_found');
  });

  it('keeps problem answers for server paths and for requests that do not ask for HTML', async () => {
    expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/nowhere', headers: HTML }), 404, 'not_found');
    expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/auth/login', headers: HTML }), 405, 'method_not_allowed');
    expectProblem(await t.app.inject({ method: 'GET', url: '/tokens', headers: { accept: 'application/json' } }), 404, 'not_found');
    expectProblem(await t.app.inject({ method: 'POST', url: '/tokens', headers: HTML, payload: {} }), 404, 'not_found');
    const openapi = await t.app.inject({ method: 'GET', url: '/openapi.json', headers: HTML });
    expect(openapi.statusCode).toBe(200);
    expect(openapi.json().openapi).toMatch(/^3\./);
  });
});

describe('the first-run setup page at /setup', () => {
  let consoleDir: string;
  beforeAll(async () => {
    consoleDir = await mkdtemp(join(tmpdir(), 'keyward-console-'));
    await writeFile(join(consoleDir, 'index.html'), INDEX);
  });
  afterAll(async () => {
    await rm(consoleDir, { recursive: true, force: true });
  });

  /** A server on an empty database holding a setup token, as `npm start` runs it the first time. */
  async function firstRun() {
    const database = await openSqliteTestDatabase();
    const config = loadConfig({ LOG_LEVEL: 'info', KEYWARD_CONFIG: '' }, '/nonexistent-keyward-test-dir');
    const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
    const { app, context } = await buildApp({ config, database, keyring: parseKeyring(newKeyringEntry('v1')), setupToken: 'setup-token-0123456789abcdef', logStream: quiet, consoleDir });
    await app.ready();
    return {
      app,
      context,
      async close() {
        await app.close();
        await database.close();
      },
    };
  }

  it('answers the console page while nobody exists, and sends the browser to sign in once someone does', async () => {
    const server = await firstRun();
    try {
      const open = await server.app.inject({ method: 'GET', url: '/setup' });
      expect(open.statusCode).toBe(200);
      expect(open.body).toBe(INDEX);
      expect(String(open.headers['content-security-policy'])).toContain("script-src 'self'");

      const created = await server.app.inject({
        method: 'POST',
        url: '/api/v1/setup',
        payload: { setupToken: 'setup-token-0123456789abcdef', email: 'first@example.com', password: 'a long enough password', organizationName: 'First', organizationSlug: 'first' },
      });
      expect(created.statusCode).toBe(201);
      const closed = await server.app.inject({ method: 'GET', url: '/setup', headers: HTML });
      expect(closed.statusCode).toBe(303);
      // An explicit empty fragment, so the browser does not carry the spent token to the sign-in address.
      expect(closed.headers.location).toBe('/sign-in#');
    } finally {
      await server.close();
    }
  });

  it('sends the browser to sign in when another replica has set Keyward up, though this one still holds its token', async () => {
    const server = await firstRun();
    try {
      await bootstrapOwner(server.context.deps, { email: 'elsewhere@example.com', password: 'a long enough password', organizationName: 'Other', organizationSlug: 'other' });
      expect(server.context.setup.token).not.toBeNull();
      const response = await server.app.inject({ method: 'GET', url: '/setup', headers: HTML });
      expect(response.statusCode).toBe(303);
      expect(response.headers.location).toBe('/sign-in#');
    } finally {
      await server.close();
    }
  });

  it('sends the browser to sign in on a server that was never waiting for setup', async () => {
    const t = await createTestApp(openSqliteTestDatabase, { consoleDir });
    try {
      const response = await t.app.inject({ method: 'GET', url: '/setup', headers: HTML });
      expect(response.statusCode).toBe(303);
      expect(response.headers.location).toBe('/sign-in#');
    } finally {
      await t.close();
    }
  });
});

describe('the web console before it is built', () => {
  it('answers / and /setup with a problem that says how to build it', async () => {
    const t = await createTestApp(openSqliteTestDatabase, { consoleDir: join(tmpdir(), 'keyward-console-never-built') });
    try {
      for (const url of ['/', '/setup']) {
        const body = expectProblem(await t.app.inject({ method: 'GET', url }), 503, 'service_unavailable');
        expect(body.detail).toContain('npm run build -w packages/console');
      }
    } finally {
      await t.close();
    }
  });
});
