// Hostile input on every operation of the OpenAPI document, generated at
// random: bodies of any shape, raw bytes that are not JSON, a valid body
// with one field swapped for anything, form fields of any value, path ids of any characters and
// query parameters of any value. Whatever arrives, the answer is never a 5xx,
// every refusal is RFC 9457 problem+json, and no answer repeats the caller's
// token. The operations come from the document, so a new route is covered
// without being listed here.
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../storage/test-databases.ts';
import { VALID_BODIES } from '../testing/operation-bodies.ts';
import { addMember, bearer, createTestApp, json, passwordToken, type TestApp } from '../testing/test-app.ts';

const ALL_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read', 'keyward:verify'];
/** Random cases per operation and kind of input: bounded, so the suite stays a few seconds a database. KEYWARD_FUZZ_RUNS searches longer. */
const RUNS = Number(process.env.KEYWARD_FUZZ_RUNS ?? 8);
/** A case takes a few milliseconds an operation: a longer search gets the time it needs. */
const TEST_OPTIONS = { timeout: 30_000 + RUNS * 60 };
/** A stream that stays open: inject() would wait for its end. Its Last-Event-ID handling has its own tests. */
const SKIPPED = new Set(['GET /api/v1/events']);

interface Operation {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  pathParameters: string[];
  queryParameters: string[];
  hasBody: boolean;
  /** Whether it also takes a form-encoded body (OAuth introspection). */
  takesForm: boolean;
  /** A valid body: the shared fixture's, else the document's first request example. */
  example: Record<string, unknown> | null;
}

function operationsOf(document: { paths: Record<string, Record<string, any>> }): Operation[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, operation]): Operation => {
        const parameters = (operation.parameters ?? []) as { in: string; name: string }[];
        const content = operation.requestBody?.content?.['application/json'];
        const examples = Object.values((content?.examples ?? {}) as Record<string, { value: unknown }>);
        const name = `${method.toUpperCase()} ${path}`;
        const example = VALID_BODIES[name] ?? content?.example ?? examples[0]?.value;
        return {
          name,
          method: method.toUpperCase() as Operation['method'],
          path,
          pathParameters: parameters.filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name),
          queryParameters: parameters.filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name),
          hasBody: operation.requestBody !== undefined,
          takesForm: operation.requestBody?.content?.['application/x-www-form-urlencoded'] !== undefined,
          example: example !== null && typeof example === 'object' && !Array.isArray(example) ? (example as Record<string, unknown>) : null,
        };
      })
      .filter((operation) => !SKIPPED.has(operation.name)),
  );
}

/** Any JSON value, shallow enough to stay fast. */
const anyJson = fc.jsonValue({ maxDepth: 3 });
/** Strings of any code points, including NUL, lone surrogates and line breaks. */
const anyText = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('', ' ', '..', '%00', '\u0000', 'null', '-1', '1e309', 'a'.repeat(5_000)));

type Path = readonly (string | number)[];

/** Every place in a JSON value a field or an element sits, nested ones included. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [];
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((item, index) => [index, item]) : Object.entries(value);
  return entries.flatMap(([key, item]) => [[...prefix, key], ...pathsOf(item, [...prefix, key])]);
}

/** A copy of `value` with whatever sits at `path` replaced. */
function replacedAt(value: unknown, path: Path, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [key, ...rest] = path;
  if (Array.isArray(value)) return value.map((item, index) => (index === key ? replacedAt(item, rest, replacement) : item));
  const record = value as Record<string, unknown>;
  return { ...record, [key as string]: replacedAt(record[key as string], rest, replacement) };
}

/** What replaces a field: often a value of a plausible type, so the input passes the schema and reaches the handler. */
const anyReplacement = fc.oneof(anyJson, anyText, fc.integer(), fc.double(), fc.boolean(), fc.array(anyText, { maxLength: 3 }));

describeEachDialect('hostile input on every operation', (open) => {
  let t: TestApp;
  let token: string;
  let operations: Operation[];
  /** Ids of things in the caller's organization, by path prefix: the input reaches the handler, not only routing. */
  const ownIds: Array<[RegExp, string]> = [];

  beforeAll(async () => {
    t = await createTestApp(open);
    token = (await passwordToken(t, { scopes: ALL_SCOPES })).token;
    const create = async (url: string, payload: object) => {
      const response = await t.app.inject({ method: 'POST', url, headers: bearer(token), payload });
      if (response.statusCode !== 201) throw new Error(`fixture: ${url} answered ${response.statusCode} ${response.body}`);
      return json(response).id as string;
    };
    ownIds.push([/^\/api\/v1\/tokens\//, (await passwordToken(t, { scopes: ['tokens:read'] })).id]);
    ownIds.push([/^\/api\/v1\/clients\//, await create('/api/v1/clients', { name: 'fixture-client' })]);
    ownIds.push([/^\/api\/v1\/resources\//, await create('/api/v1/resources', { type: 'site', name: 'fixture-site' })]);
    ownIds.push([/^\/api\/v1\/webhooks\//, await create('/api/v1/webhooks', { url: 'https://hooks.example.com/fixture', events: ['token.created'] })]);
    ownIds.push([/^\/api\/v1\/members\//, await addMember(t, token, 'member@example.com', 'member')]);
    operations = operationsOf(json(await t.app.inject({ method: 'GET', url: '/openapi.json' })));
  });
  afterAll(async () => {
    await t?.close();
  });

  /** The operation's URL with an id of the caller's own for each path parameter (or `id` where given). */
  function urlOf(operation: Operation, id?: string): string {
    const own = ownIds.find(([pattern]) => pattern.test(operation.path))?.[1] ?? 'unknown0000';
    return operation.path.replace(/\{[A-Za-z]+\}/g, () => (id === undefined ? own : encodeURIComponent(id)));
  }

  function send(operation: Operation, options: { url?: string; body?: string; contentType?: string }) {
    return t.app.inject({
      method: operation.method,
      url: options.url ?? urlOf(operation),
      headers: { ...bearer(token), ...(options.body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }) },
      ...(options.body === undefined ? {} : { payload: options.body }),
    });
  }

  /** Never a server error, a refusal always problem+json, and never the caller's secret. */
  function expectSafeAnswer(response: LightMyRequestResponse, input: unknown): void {
    const context = `${JSON.stringify(input)?.slice(0, 300)} → ${response.statusCode} ${response.body.slice(0, 300)}`;
    expect(response.statusCode, context).toBeLessThan(500);
    if (response.statusCode >= 400) {
      expect(response.headers['content-type'], context).toMatch(/^application\/problem\+json/);
      expect(json(response), context).toMatchObject({ status: response.statusCode, code: expect.any(String), detail: expect.any(String) });
    }
    expect(response.body, context).not.toContain(token);
  }

  /** Runs one property per operation and reports every operation that fails, with fast-check's counterexample. */
  async function checkEach(selected: Operation[], property: (operation: Operation) => fc.IAsyncProperty<any>): Promise<void> {
    expect(selected.length).toBeGreaterThan(0);
    const failures: string[] = [];
    for (const operation of selected) {
      const details = await fc.check(property(operation), { numRuns: RUNS });
      if (details.failed) failures.push(`${operation.name}: ${String(details.errorInstance).split('\n').slice(0, 3).join(' ')} (seed ${details.seed}, path ${details.counterexamplePath})`);
    }
    expect(failures).toEqual([]);
  }

  const withBody = () => operations.filter((operation) => operation.hasBody);

  it('answers a JSON body of any shape without a server error', TEST_OPTIONS, async () => {
    await checkEach(withBody(), (operation) =>
      fc.asyncProperty(anyJson, async (body) => expectSafeAnswer(await send(operation, { body: JSON.stringify(body) }), body)),
    );
  });

  it('answers bytes that are not JSON with a problem, not a server error', TEST_OPTIONS, async () => {
    await checkEach(withBody(), (operation) =>
      fc.asyncProperty(anyText, async (body) => expectSafeAnswer(await send(operation, { body }), body)),
    );
  });

  it('answers a valid body with any one field, at any depth, replaced by anything without a server error', TEST_OPTIONS, async () => {
    const bodies = withBody().filter((operation) => operation.example !== null && Object.keys(operation.example).length > 0);
    await checkEach(bodies, (operation) => {
      const example = operation.example!;
      return fc.asyncProperty(fc.constantFrom(...pathsOf(example)), anyReplacement, async (path, value) => {
        const body = replacedAt(example, path, value);
        expectSafeAnswer(await send(operation, { body: JSON.stringify(body) }), body);
      });
    });
  });

  it('answers a form-encoded body of any fields and values without a server error', TEST_OPTIONS, async () => {
    await checkEach(
      operations.filter((operation) => operation.takesForm),
      (operation) => {
        const field = fc.oneof(fc.constantFrom('token', 'token_type_hint'), fc.string({ maxLength: 10 }));
        return fc.asyncProperty(fc.oneof(fc.array(fc.tuple(field, anyText), { maxLength: 4 }).map((pairs) => new URLSearchParams(pairs).toString()), anyText), async (body) => {
          expectSafeAnswer(await send(operation, { body, contentType: 'application/x-www-form-urlencoded' }), body);
        });
      },
    );
  });

  it('answers a path id of any characters without a server error', TEST_OPTIONS, async () => {
    await checkEach(
      operations.filter((operation) => operation.pathParameters.length > 0),
      (operation) => fc.asyncProperty(anyText, async (id) => {
        const body = operation.example ? JSON.stringify(operation.example) : operation.hasBody ? '{}' : undefined;
        expectSafeAnswer(await send(operation, { url: urlOf(operation, id), body }), id);
      }),
    );
  });

  it('answers query parameters of any value without a server error', TEST_OPTIONS, async () => {
    await checkEach(
      operations.filter((operation) => operation.queryParameters.length > 0 && !operation.hasBody),
      (operation) => fc.asyncProperty(fc.dictionary(fc.constantFrom(...operation.queryParameters), anyText, { maxKeys: operation.queryParameters.length }), async (query) => {
        const url = `${urlOf(operation)}?${new URLSearchParams(query).toString()}`;
        expectSafeAnswer(await send(operation, { url }), query);
      }),
    );
  });
});
