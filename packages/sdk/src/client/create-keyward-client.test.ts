// The management client against a real Keyward server on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeywardProblemError, KeywardUnavailableError, createKeywardClient, type KeywardClient, type KeywardSchemas } from '../index.ts';
import { startKeywardServer, type KeywardTestServer } from '../testing/keyward-server.ts';

/** The rejection of a call, which must be there. */
async function refusalOf(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => expect.fail('the call succeeded'),
    (error: unknown) => error,
  );
}

describe('createKeywardClient', () => {
  let server: KeywardTestServer;
  let keyward: KeywardClient;

  beforeAll(async () => {
    server = await startKeywardServer();
    keyward = createKeywardClient({ baseUrl: server.baseUrl, token: server.owner });
  }, 60_000);
  afterAll(async () => server?.close());

  it('creates, lists, gets, rotates and revokes a token', async () => {
    const { data: created, response } = await keyward.POST('/api/v1/tokens', { body: { name: 'ci deploy', scopes: ['tokens:read'], expiresInDays: 30 } });
    expect(response.status).toBe(201);
    expect(created.token).toMatch(/^kw_pat_/);
    expect(created).toMatchObject({ name: 'ci deploy', scopes: ['tokens:read'], status: 'active' });

    const { data: page } = await keyward.GET('/api/v1/tokens', { params: { query: { status: 'active', limit: 100 } } });
    expect(page.items.map((token) => token.id)).toContain(created.id);
    expect(page.items.find((token) => token.id === created.id)).not.toHaveProperty('token');

    const { data: fetched } = await keyward.GET('/api/v1/tokens/{id}', { params: { path: { id: created.id } } });
    const token: KeywardSchemas['Token'] = fetched;
    expect(token).toMatchObject({ id: created.id, hint: created.hint, expiresAt: created.expiresAt });

    // No body: the grace period defaults to none.
    const { data: rotated } = await keyward.POST('/api/v1/tokens/{id}/rotate', { params: { path: { id: created.id } } });
    expect(rotated.id).not.toBe(created.id);
    expect(rotated.rotatedFrom).toBe(created.id);
    expect(rotated.token).not.toBe(created.token);

    const revoked = await keyward.DELETE('/api/v1/tokens/{id}', { params: { path: { id: rotated.id } } });
    expect(revoked.response.status).toBe(204);
    const { data: after } = await keyward.GET('/api/v1/tokens/{id}', { params: { path: { id: rotated.id } } });
    expect(after.status).toBe('revoked');

    // Rotated with no grace period: the old secret stopped working at once.
    const own = createKeywardClient({ baseUrl: server.baseUrl, token: created.token });
    const refused = await refusalOf(own.GET('/api/v1/tokens/current'));
    expect(refused).toBeInstanceOf(KeywardProblemError);
    expect((refused as KeywardProblemError).code).toBe('unauthenticated');
  });

  it('rejects with KeywardProblemError carrying the problem, for a missing token', async () => {
    const error = await refusalOf(keyward.GET('/api/v1/tokens/{id}', { params: { path: { id: 'tok_doesNotExist0000000000' } } }));
    expect(error).toBeInstanceOf(KeywardProblemError);
    const problem = error as KeywardProblemError;
    expect(problem.status).toBe(404);
    expect(problem.code).toBe('not_found');
    expect(problem.problem).toMatchObject({ status: 404, code: 'not_found', title: expect.any(String), detail: expect.any(String) });
  });

  it('names each invalid field of a refused body', async () => {
    const error = (await refusalOf(keyward.POST('/api/v1/tokens', { body: { name: 'bad name!', expiresInDays: 0 } }))) as KeywardProblemError;
    expect(error).toBeInstanceOf(KeywardProblemError);
    expect(error.code).toBe('validation_failed');
    expect(error.problem.errors?.map((entry) => entry.field).sort()).toEqual(['expiresInDays', 'name']);
  });

  it('sends its token as a bearer token: a wrong one is refused as unauthenticated', async () => {
    const stranger = createKeywardClient({ baseUrl: server.baseUrl, token: 'kw_pat_not-a-real-token' });
    const error = (await refusalOf(stranger.GET('/api/v1/tokens'))) as KeywardProblemError;
    expect(error).toBeInstanceOf(KeywardProblemError);
    expect(error.status).toBe(401);
    // Whoever sees the error never sees the token that was sent.
    expect(JSON.stringify(error.problem)).not.toContain('not-a-real-token');
  });

  it('rejects with KeywardUnavailableError when Keyward cannot be reached', async () => {
    const away = createKeywardClient({ baseUrl: 'http://127.0.0.1:1', token: server.owner });
    const error = await refusalOf(away.GET('/api/v1/tokens'));
    expect(error).toBeInstanceOf(KeywardUnavailableError);
  });

  it('passes its requests through a fetch of the caller\'s choosing', async () => {
    const seen: string[] = [];
    const traced = createKeywardClient({
      baseUrl: `${server.baseUrl}/`,
      token: server.owner,
      fetch: (request) => {
        seen.push(`${request.method} ${new URL(request.url).pathname} ${request.headers.get('authorization') === `Bearer ${server.owner}`}`);
        return fetch(request);
      },
    });
    const { data } = await traced.GET('/api/v1/organizations/current');
    expect(data.slug).toBe('acme');
    expect(seen).toEqual(['GET /api/v1/organizations/current true']);
  });
});
