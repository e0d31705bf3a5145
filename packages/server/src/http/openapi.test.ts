// The OpenAPI document as client generators and /docs readers meet it, and
// the /docs page itself. The document does not depend on the storage
// dialect, so one SQLite app serves every check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteTestDatabase } from '../storage/test-databases.ts';
import { dereference, referencesIn } from '../testing/openapi-document.ts';
import { createTestApp, json, ownerToken, type TestApp } from '../testing/test-app.ts';
import { CSP } from './security.ts';

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

interface Operation {
  name: string;
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: unknown[];
  requestBody?: any;
  responses: Record<string, any>;
}

describe('the OpenAPI document', () => {
  let t: TestApp;
  let document: Record<string, any>;
  let operations: Operation[];

  beforeAll(async () => {
    t = await createTestApp(openSqliteTestDatabase);
    document = json(await t.app.inject({ method: 'GET', url: '/openapi.json' }));
    operations = Object.entries(document.paths as Record<string, Record<string, Omit<Operation, 'name'>>>).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, operation]) => ({ ...operation, name: `${method.toUpperCase()} ${path}` })),
    );
  });
  afterAll(async () => t?.close());

  it('gives every operation a unique camelCase operationId, a summary and tags', () => {
    expect(operations.length).toBeGreaterThan(40);
    const missing = operations.filter((operation) => !operation.operationId || !operation.summary || !operation.tags?.length).map((operation) => operation.name);
    expect(missing, 'set operationId, summary and tags in the route schema').toEqual([]);
    const ids = operations.map((operation) => operation.operationId!);
    expect(ids.filter((id, index) => ids.indexOf(id) !== index), 'operationIds must be unique').toEqual([]);
    expect(ids.filter((id) => !/^[a-z][a-zA-Z]+$/.test(id))).toEqual([]);
  });

  it('declares every tag an operation uses at the top level, each with a description, and no unused tag', () => {
    const declared = new Map((document.tags as Array<{ name: string; description?: string }>).map((tag) => [tag.name, tag.description]));
    const used = new Set(operations.flatMap((operation) => operation.tags ?? []));
    expect([...used].filter((tag) => !declared.has(tag)), 'add the tag to TAGS in openapi.ts').toEqual([]);
    expect([...declared].filter(([, description]) => !description)).toEqual([]);
    expect([...declared.keys()].filter((tag) => !used.has(tag))).toEqual([]);
  });

  it('names the shared shapes under components/schemas and refers to them instead of copying them', () => {
    const schemas = document.components.schemas as Record<string, unknown>;
    expect(Object.keys(schemas)).toEqual(
      expect.arrayContaining(['Token', 'TokenCreated', 'TokenPage', 'CreateTokenRequest', 'UpdateTokenRequest', 'Client', 'Member', 'Resource', 'VerifyRequest', 'VerifyResult', 'Problem']),
    );
    const operation = (path: string, method: string) => document.paths[path][method];
    expect(operation('/api/v1/tokens', 'post').requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/CreateTokenRequest' });
    expect(operation('/api/v1/tokens', 'post').responses['201'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/TokenCreated' });
    expect(operation('/api/v1/tokens/{id}', 'get').responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Token' });
    expect(operation('/api/v1/tokens/{id}', 'patch').requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/UpdateTokenRequest' });
    // Rotation takes no body at all as readily as one: its body is optional.
    expect(operation('/api/v1/tokens/{id}/rotate', 'post').requestBody.required).toBe(false);
    expect(operation('/api/v1/tokens', 'post').requestBody.required).toBe(true);
    expect(operation('/api/v1/verify', 'post').responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/VerifyResult' });
    expect(dereference(document, operation('/api/v1/tokens', 'get').responses['200'].content['application/json'].schema).properties.items.items).toEqual({ $ref: '#/components/schemas/Token' });
    // Problems are shared responses, each with its problem+json body.
    expect(operation('/api/v1/tokens/{id}', 'get').responses['404']).toEqual({ $ref: '#/components/responses/NotFound' });
    expect(dereference(document, { $ref: '#/components/responses/RateLimited' }).headers).toHaveProperty('Retry-After');
  });

  it('has no dangling reference and no unused named schema', () => {
    const references = referencesIn(document);
    for (const reference of new Set(references)) expect(() => dereference(document, { $ref: reference }), reference).not.toThrow();
    const unused = Object.keys(document.components.schemas).filter((name) => !references.includes(`#/components/schemas/${name}`));
    expect(unused).toEqual([]);
  });

  it('says which operations need no credentials, and documents a client error for every other', () => {
    const open = operations.filter((operation) => Array.isArray(operation.security) && operation.security.length === 0).map((operation) => operation.operationId);
    expect(open.sort()).toEqual(['acceptInvite', 'authorizeRequest', 'checkLiveness', 'checkReadiness', 'completeSetup', 'getMetrics', 'getVersion', 'login', 'reportLeakedTokensAsPartner']);
    const probes = operations.filter((operation) => operation.tags?.includes('System'));
    const withoutClientError = operations.filter((operation) => !probes.includes(operation) && !Object.keys(operation.responses).some((code) => code.startsWith('4')));
    expect(withoutClientError.map((operation) => operation.name)).toEqual([]);
  });

  it('shows examples of the main requests and answers', () => {
    const media = (operationId: string, where: 'request' | string) => {
      const operation = operations.find((candidate) => candidate.operationId === operationId)!;
      const container = where === 'request' ? operation.requestBody : dereference(document, operation.responses[where]);
      return Object.values(container.content as Record<string, { examples?: Record<string, { value: unknown }> }>)[0]!;
    };
    expect(Object.keys(media('createToken', 'request').examples ?? {})).toEqual(['withBearer', 'headless']);
    expect(media('createToken', '201').examples?.created?.value).toMatchObject({ token: expect.stringMatching(/^kw_pat_/), status: 'active' });
    expect(media('verifyToken', '200').examples?.revoked?.value).toEqual({ valid: false, code: 'REVOKED' });
    expect(media('introspectToken', '200').examples?.inactive?.value).toEqual({ active: false });
  });
});

describe('the API reference at /docs', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(openSqliteTestDatabase);
  });
  afterAll(async () => t?.close());

  /** What a browser would load from the page: its scripts, stylesheets and icons. */
  function assetsOf(html: string): string[] {
    return [...html.matchAll(/<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
  }

  it("is Keyward's page, under the server's Content-Security-Policy, with no framework name or logo in view", async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBe(CSP);
    expect(page.body).toMatch(/<title>Keyward API reference<\/title>/);
    // The visible text: no comments, no tags (file names such as swagger-ui.css are not shown).
    const visible = page.body.replace(/<!--[\s\S]*?-->/g, '').replace(/<[^>]+>/g, ' ');
    expect(visible).not.toMatch(/swagger/i);
    // The CSP allows no inline script: every script must be a file of this origin.
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const icons = [...page.body.matchAll(/<link rel="icon"[^>]*href="([^"]+)"/g)].map((match) => match[1]);
    expect(icons).toEqual(['/docs/static/theme/keyward.svg']);
  });

  it('loads every script, stylesheet and icon it names from this server', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs' });
    const assets = assetsOf(page.body);
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const asset of assets) {
      expect(asset, 'same origin only').toMatch(/^\/docs\//);
      const response = await t.app.inject({ method: 'GET', url: asset });
      expect(response.statusCode, asset).toBe(200);
      expect(response.headers['content-type'], asset).toMatch(/javascript|css|svg/);
    }
    const logo = await t.app.inject({ method: 'GET', url: '/docs/static/theme/keyward.svg' });
    expect(logo.body).toContain('aria-label="Keyward"');
  });

  it('sends requests to the server that served it, with a bearer token kept in memory only', async () => {
    const initializer = (await t.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })).body;
    expect(initializer).toContain('"persistAuthorization":false');
    expect(initializer).toContain('"layout":"BaseLayout"');
    expect(initializer).toContain('validatorUrl: null');
    const served = json(await t.app.inject({ method: 'GET', url: '/docs/json' }));
    expect(served.servers).toEqual([{ url: '/', description: 'This Keyward server' }]);
    expect(served.components.securitySchemes.bearerToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(served.info.title).toBe('Keyward API');
  });

  it('answers a call made the way the page makes it: a bearer token on a same-origin JSON request', async () => {
    const token = await ownerToken(t);
    const answer = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
    expect(answer.statusCode).toBe(200);
    expect(json(answer).effective.permission).toBe('owner');
  });
});
