// The shared security checks, run on every operation of the OpenAPI document:
// no credentials, a token without the scope, an expired, revoked or disabled
// token, and ids of another user or organization. The operations come from
// the document, so a new route is checked, or fails this suite until it is
// declared public or given a request body below.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../storage/test-databases.ts';
import { VALID_BODIES } from '../testing/operation-bodies.ts';
import {
  addMember,
  bearer,
  createTestApp,
  expectInsufficientScope,
  expectInvalidToken,
  expectProblem,
  expectUnauthenticated,
  json,
  passwordToken,
  type TestApp,
} from '../testing/test-app.ts';

/** Operations that answer without credentials, on purpose. */
const PUBLIC_OPERATIONS = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /api/version',
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/accept-invite',
  'POST /api/v1/setup',
  // Forward-auth judges the bearer token of the request it is asked about; it has no caller of its own.
  'GET /api/v1/authz',
  // Secret-scanning partners sign their reports with their own secret instead (secret-scanning-routes.test.ts).
  'POST /api/v1/secret-scanning/reports',
]);


type Kind = 'token' | 'client' | 'member' | 'resource' | 'webhook';

/** Which kind of thing the path parameter of an operation names. */
const PATH_KINDS: Array<[RegExp, Kind]> = [
  [/^\/api\/v1\/tokens\/\{id\}/, 'token'],
  [/^\/api\/v1\/clients\/\{id\}/, 'client'],
  [/^\/api\/v1\/members\/\{userId\}/, 'member'],
  [/^\/api\/v1\/resources\/\{id\}/, 'resource'],
  [/^\/api\/v1\/webhooks\/\{id\}/, 'webhook'],
];

const ALL_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read'];
const DAY_MS = 86_400_000;

interface Operation {
  method: string;
  path: string;
  /** Whether the document says it needs credentials. */
  isSecured: boolean;
  /** Any one of these passes; empty = any valid credential; null = the document does not say. */
  scopes: string[] | null;
  hasBody: boolean;
  /** The kind its path parameter names, if it has one; null = a parameter this suite does not know. */
  kind: Kind | null | undefined;
}

const nameOf = (operation: Operation) => `${operation.method} ${operation.path}`;

/** Reads the operations from the document that the app serves. */
function operationsOf(document: { paths: Record<string, Record<string, any>> }): Operation[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, operation]): Operation => {
        const description = String(operation.description ?? '');
        const listed = /Needs scope (.+?) \(/.exec(description)?.[1];
        const scopes = listed ? listed.split(' or ') : description.includes('Needs any valid credential') ? [] : null;
        const hasParameter = (operation.parameters ?? []).some((parameter: { in: string }) => parameter.in === 'path');
        return {
          method: method.toUpperCase(),
          path,
          isSecured: Array.isArray(operation.security) && operation.security.length > 0,
          scopes,
          hasBody: operation.requestBody !== undefined,
          kind: hasParameter ? (PATH_KINDS.find(([pattern]) => pattern.test(path))?.[1] ?? null) : undefined,
        };
      }),
  );
}

/** Runs a check on each operation and reports every one that fails, not only the first. */
async function checkEach(operations: Operation[], check: (operation: Operation) => Promise<void>): Promise<void> {
  expect(operations.length).toBeGreaterThan(0);
  const failures: string[] = [];
  for (const operation of operations) {
    try {
      await check(operation);
    } catch (error) {
      failures.push(`${nameOf(operation)}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  expect(failures).toEqual([]);
}

/** What a caller may learn from a 404: all of it but the path it asked for. */
function answerOf(response: LightMyRequestResponse) {
  const { instance: _instance, ...rest } = json(response);
  return { status: response.statusCode, ...rest };
}

describeEachDialect('the route security suite', (open) => {
  let t: TestApp;
  let operations: Operation[];
  const tokens = {} as Record<'owner' | 'expired' | 'revoked' | 'disabled' | 'auditOnly' | 'tokensReadOnly' | 'member', string>;
  /** Ids in the caller's own organization, used wherever an operation needs one. */
  const own = {} as Record<Kind, string>;
  /** Ids that exist in another organization. */
  const otherOrganization = {} as Record<Kind, string[]>;
  /** The owner's token, which the member may not see. */
  let otherUserTokenId: string;

  beforeAll(async () => {
    t = await createTestApp(open);
    const inject = async (method: 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: unknown) => {
      const response = await t.app.inject({ method, url, headers: bearer(token), ...(payload === undefined ? {} : { payload: payload as object }) });
      if (response.statusCode >= 300) throw new Error(`fixture: ${method} ${url} answered ${response.statusCode} ${response.body}`);
      return response.statusCode === 204 ? {} : json(response);
    };

    // Issued a day's lifetime, then the clock moves past it; every other token is issued afterwards.
    tokens.expired = (await passwordToken(t, { scopes: ALL_SCOPES, expiresInDays: 1 })).token;
    t.clock.advance(2 * DAY_MS);
    tokens.owner = (await passwordToken(t, { scopes: ALL_SCOPES })).token;
    const revoked = await passwordToken(t, { scopes: ALL_SCOPES });
    await inject('DELETE', `/api/v1/tokens/${revoked.id}`, tokens.owner);
    tokens.revoked = revoked.token;
    const disabled = await passwordToken(t, { scopes: ALL_SCOPES });
    await inject('PATCH', `/api/v1/tokens/${disabled.id}`, tokens.owner, { enabled: false });
    tokens.disabled = disabled.token;
    tokens.auditOnly = (await passwordToken(t, { scopes: ['audit:read'] })).token;
    tokens.tokensReadOnly = (await passwordToken(t, { scopes: ['tokens:read'] })).token;

    own.token = (await passwordToken(t, { scopes: ['tokens:read'] })).id;
    otherUserTokenId = own.token;
    own.client = (await inject('POST', '/api/v1/clients', tokens.owner, { name: 'own-client' })).id;
    own.resource = (await inject('POST', '/api/v1/resources', tokens.owner, { type: 'site', name: 'own-site' })).id;
    own.member = await addMember(t, tokens.owner, 'member@example.com', 'member');
    own.webhook = (await inject('POST', '/api/v1/webhooks', tokens.owner, { url: 'https://hooks.example.com/own', events: ['token.created'] })).id;
    tokens.member = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] }, 'member@example.com')).token;

    // Another organization: the same owner founds it, and someone who is only there joins.
    await inject('POST', '/api/v1/organizations', tokens.owner, { name: 'Other', slug: 'other' });
    const other = await passwordToken(t, { scopes: ALL_SCOPES, organization: 'other' });
    const otherClient = (await inject('POST', '/api/v1/clients', other.token, { name: 'other-client' })).id;
    const otherServiceToken = (await inject('POST', `/api/v1/clients/${otherClient}/tokens`, other.token, { name: 'other-svc', scopes: ['tokens:read'] })).id;
    otherOrganization.token = [other.id, otherServiceToken];
    otherOrganization.client = [otherClient];
    otherOrganization.resource = [(await inject('POST', '/api/v1/resources', other.token, { type: 'site', name: 'other-site' })).id];
    otherOrganization.member = [await addMember(t, other.token, 'elsewhere@example.com', 'member')];
    otherOrganization.webhook = [(await inject('POST', '/api/v1/webhooks', other.token, { url: 'https://hooks.example.com/other', events: ['token.created'] })).id];

    const document = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    operations = operationsOf(json(document) as { paths: Record<string, Record<string, any>> });
  });
  afterAll(async () => {
    await t?.close();
  });

  const secured = () => operations.filter((operation) => operation.isSecured);
  const withKind = () => secured().filter((operation) => operation.kind);

  function urlOf(operation: Operation, id?: string): string {
    if (!operation.kind) return operation.path;
    return operation.path.replace(/\{[A-Za-z]+\}/, id ?? own[operation.kind]);
  }

  function call(operation: Operation, headers: Record<string, string>, id?: string) {
    const body = VALID_BODIES[nameOf(operation)];
    return t.app.inject({ method: operation.method as 'GET', url: urlOf(operation, id), headers, ...(body === undefined ? {} : { payload: body as object }) });
  }

  describe('the operation list', () => {
    it('has every operation secured or on the public allow-list', () => {
      const unaccounted = operations.filter((operation) => !operation.isSecured && !PUBLIC_OPERATIONS.has(nameOf(operation))).map(nameOf);
      expect(unaccounted).toEqual([]);
      const stale = [...PUBLIC_OPERATIONS].filter((name) => !operations.some((operation) => nameOf(operation) === name && !operation.isSecured));
      expect(stale).toEqual([]);
      expect(secured().length).toBeGreaterThan(20);
    });

    it('says which scopes each secured operation needs', () => {
      expect(secured().filter((operation) => operation.scopes === null).map(nameOf)).toEqual([]);
    });

    it('has a request body in the table for each secured operation that takes one, and no stale entries', () => {
      expect(secured().filter((operation) => operation.hasBody && !(nameOf(operation) in VALID_BODIES)).map(nameOf)).toEqual([]);
      expect(Object.keys(VALID_BODIES).filter((name) => !secured().some((operation) => nameOf(operation) === name && operation.hasBody))).toEqual([]);
    });

    it('knows the kind of every path parameter', () => {
      expect(secured().filter((operation) => operation.kind === null).map(nameOf)).toEqual([]);
    });
  });

  describe('every secured operation', () => {
    it('answers 401 unauthenticated with a Bearer challenge without credentials', async () => {
      await checkEach(secured(), async (operation) => expectUnauthenticated(await call(operation, {})));
    });

    it("answers 403 to a token without the operation's scope", async () => {
      const scoped = secured().filter((operation) => operation.scopes && operation.scopes.length > 0);
      await checkEach(scoped, async (operation) => {
        const token = operation.scopes!.includes('audit:read') ? tokens.tokensReadOnly : tokens.auditOnly;
        expectInsufficientScope(await call(operation, bearer(token)));
      });
    });

    it('answers 401 invalid_token to an expired token', async () => {
      await checkEach(secured(), async (operation) => expectInvalidToken(await call(operation, bearer(tokens.expired))));
    });

    it('answers 401 invalid_token to a revoked token', async () => {
      await checkEach(secured(), async (operation) => expectInvalidToken(await call(operation, bearer(tokens.revoked))));
    });

    it('answers 401 invalid_token to a disabled token', async () => {
      await checkEach(secured(), async (operation) => expectInvalidToken(await call(operation, bearer(tokens.disabled))));
    });
  });

  describe('every secured operation on an id', () => {
    /** The answer for an id that does not exist, with the same caller. */
    async function missing(operation: Operation, token: string) {
      const response = await call(operation, bearer(token), `${own[operation.kind!].slice(0, 4)}doesNotExist0`);
      expectProblem(response, 404, 'not_found');
      return answerOf(response);
    }

    it("answers another organization's ids with the same 404 as a nonexistent id", async () => {
      await checkEach(withKind(), async (operation) => {
        const expected = await missing(operation, tokens.owner);
        for (const id of otherOrganization[operation.kind!]) {
          const response = await call(operation, bearer(tokens.owner), id);
          expectProblem(response, 404, 'not_found');
          expect(answerOf(response)).toEqual(expected);
        }
      });
    });

    it("answers another user's token ids with the same 404 as a nonexistent id", async () => {
      await checkEach(withKind().filter((operation) => operation.kind === 'token'), async (operation) => {
        const expected = await missing(operation, tokens.member);
        const response = await call(operation, bearer(tokens.member), otherUserTokenId);
        expectProblem(response, 404, 'not_found');
        expect(answerOf(response)).toEqual(expected);
      });
    });
  });
});
