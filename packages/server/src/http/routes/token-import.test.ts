import { generateToken, randomBase62, sha256Digest } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { countLiveTokensByVersion } from '../../config/keyring-coverage.ts';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, expectInvalidToken, expectProblem, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

const DAY_MS = 86_400_000;
const LEGACY_PREFIX = 'sk_live_';

/** A key as another service issued it: its own prefix, no Keyward checksum. */
function legacyKey(): string {
  return `${LEGACY_PREFIX}${randomBase62(32)}`;
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describeEachDialect('POST /api/v1/tokens/import', (open) => {
  let t: TestApp;
  let owner: string;
  let verifierToken: string;
  /** Every key and hash the tests imported: none may appear in an answer or a log line. */
  let secrets: string[];

  beforeEach(async () => {
    t = await createTestApp(open, { env: { KEYWARD_LEGACY_TOKEN_PREFIXES: `${LEGACY_PREFIX},acme-` } });
    owner = await ownerToken(t, { scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read', 'keyward:verify', 'scans:read', 'scans:write'], expiresInDays: 365 });
    const client = await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'gateway' } });
    const issued = await t.app.inject({ method: 'POST', url: `/api/v1/clients/${json(client).id}/tokens`, headers: bearer(owner), payload: { name: 'verifier', scopes: ['keyward:verify'] } });
    verifierToken = json(issued).token;
    secrets = [];
  });
  afterEach(async () => {
    for (const secret of secrets) expect(t.logs.join('')).not.toContain(secret);
    await t.close();
  });

  const inDays = (days: number) => new Date(t.clock.now().getTime() + days * DAY_MS).toISOString();

  function record(fields: Record<string, unknown>): Record<string, unknown> {
    return { owner: { email: 'owner@example.com' }, name: `imported ${randomBase62(6)}`, scopes: ['scans:read'], expiresAt: inDays(90), ...fields };
  }

  async function importBatch(records: Array<Record<string, unknown>>, caller = owner, extra: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/tokens/import', headers: bearer(caller), payload: { records, ...extra } });
    for (const secret of secrets) expect(response.body).not.toContain(secret);
    return response;
  }

  function verify(token: string): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'POST', url: '/api/v1/verify', headers: bearer(verifierToken), payload: { token, scopes: ['scans:read'] } });
  }

  async function storedToken(id: string) {
    return t.database.db.selectFrom('tokens').select(['digest', 'secretVersion', 'hashKind', 'hint', 'externalId']).where('id', '=', id).executeTakeFirstOrThrow();
  }

  it('imports a plaintext key and a SHA-256 hash; both verify through /verify and as bearer tokens', async () => {
    const plain = legacyKey();
    const hashed = legacyKey();
    const native = generateToken('kw_pat');
    secrets.push(plain, hashed, sha256Digest(hashed), native);
    const response = await importBatch([
      record({ externalId: 'key-1', plaintext: plain, scopes: ['scans:read', 'tokens:read'], metadata: { team: 'search' } }),
      record({ externalId: 'key-2', sha256: sha256Digest(hashed).toUpperCase(), prefix: LEGACY_PREFIX, scopes: ['scans:read', 'tokens:read'] }),
      record({ externalId: 'key-3', plaintext: native }),
    ]);
    expect(response.statusCode, response.body).toBe(200);
    const body = json(response);
    expect(body).toMatchObject({ dryRun: false, created: 3, skipped: 0, failed: 0 });
    expect(body.results.map((result: any) => [result.index, result.externalId, result.status])).toEqual([
      [0, 'key-1', 'created'],
      [1, 'key-2', 'created'],
      [2, 'key-3', 'created'],
    ]);
    const [plainId, hashedId, nativeId] = body.results.map((result: any) => result.tokenId as string);

    for (const [key, id] of [[plain, plainId], [hashed, hashedId], [native, nativeId]] as const) {
      const answer = json(await verify(key));
      expect(answer).toMatchObject({ valid: true, code: 'VALID', token: { id, kind: 'personal', scopes: expect.arrayContaining(['scans:read']) } });
    }
    const current = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(plain) });
    expect(current.statusCode, current.body).toBe(200);
    expect(json(current)).toMatchObject({ id: plainId, hint: `${LEGACY_PREFIX}…${plain.slice(-4)}`, metadata: { team: 'search' } });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(hashed) })).statusCode).toBe(200);
    const introspected = await t.app.inject({ method: 'POST', url: '/oauth/introspect', headers: bearer(verifierToken), payload: { token: hashed } });
    expect(json(introspected)).toMatchObject({ active: true });
    const forwarded = await t.app.inject({ method: 'GET', url: '/api/v1/authz?scopes=scans:read', headers: bearer(plain) });
    expect(forwarded.statusCode, forwarded.body).toBe(200);
    expect(forwarded.headers['x-keyward-token-id']).toBe(plainId);

    // Plaintext is hashed under the keyring at once; a hash is stored as what it is.
    expect(await storedToken(plainId)).toMatchObject({ hashKind: 'hmac', secretVersion: 'v1', externalId: 'key-1' });
    const audit = await auditActions(t, { targetId: plainId });
    expect(audit.map((event) => [event.action, event.details.imported, event.details.externalId])).toEqual([['token.created', true, 'key-1']]);
  });

  it('re-hashes a SHA-256 import under the keyring after its first use, and the key keeps verifying', async () => {
    const key = legacyKey();
    const digest = sha256Digest(key);
    secrets.push(key, digest);
    const imported = json(await importBatch([record({ externalId: 'hashed-1', sha256: digest, prefix: LEGACY_PREFIX })]));
    const id = imported.results[0].tokenId as string;
    expect(await storedToken(id)).toMatchObject({ digest, hashKind: 'sha256', hint: `${LEGACY_PREFIX}…` });
    // A hashed key needs no keyring secret, so it never counts as stranded.
    expect([...(await countLiveTokensByVersion(t.database, t.clock.now())).keys()]).toEqual(['v1']);

    expect(json(await verify(key))).toMatchObject({ valid: true, token: { id } });
    await eventually(async () => (await storedToken(id)).hashKind === 'hmac');
    const rehashed = await storedToken(id);
    expect(rehashed.secretVersion).toBe('v1');
    expect(rehashed.digest).not.toBe(digest);
    const leftovers = await t.database.db.selectFrom('tokens').select('id').where('digest', '=', digest).execute();
    expect(leftovers).toEqual([]);

    expect(json(await verify(key))).toMatchObject({ valid: true, token: { id } });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(key) })).statusCode).toBe(200);
  });

  it('creates no duplicates when the same import runs again', async () => {
    const keys = [legacyKey(), legacyKey()];
    secrets.push(...keys, sha256Digest(keys[1]!));
    const batch = [record({ externalId: 'again-1', plaintext: keys[0], name: 'first' }), record({ externalId: 'again-2', sha256: sha256Digest(keys[1]!), prefix: LEGACY_PREFIX, name: 'second' })];
    const first = json(await importBatch(batch));
    expect(first).toMatchObject({ created: 2, skipped: 0 });
    // The hashed key is used (and re-hashed) in between: its externalId still finds it.
    expect(json(await verify(keys[1]!)).valid).toBe(true);

    const second = json(await importBatch(batch));
    expect(second).toMatchObject({ created: 0, skipped: 2, failed: 0 });
    expect(second.results.map((result: any) => result.tokenId)).toEqual(first.results.map((result: any) => result.tokenId));
    const imported = await t.database.db.selectFrom('tokens').select('id').where('externalId', 'in', ['again-1', 'again-2']).execute();
    expect(imported).toHaveLength(2);
  });

  it('refuses the same key a second time under another externalId, without saying where it is', async () => {
    const key = legacyKey();
    secrets.push(key);
    expect(json(await importBatch([record({ externalId: 'one', plaintext: key })])).created).toBe(1);
    const again = json(await importBatch([record({ externalId: 'two', plaintext: key })]));
    expect(again.results[0]).toMatchObject({ status: 'failed', errors: [{ field: 'plaintext', message: 'this key is already stored in Keyward' }] });
  });

  it('answers 403 to a member, and to an admin token without tokens:manage', async () => {
    await addMember(t, owner, 'member@example.com', 'member');
    const member = await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] }, 'member@example.com');
    const key = legacyKey();
    secrets.push(key);
    expectProblem(await importBatch([record({ externalId: 'm-1', plaintext: key })], member.token), 403, 'insufficient_scope');
    const writer = await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] });
    expectProblem(await importBatch([record({ externalId: 'm-1', plaintext: key })], writer.token), 403, 'insufficient_scope');
    expect(await t.database.db.selectFrom('tokens').select('id').where('externalId', '=', 'm-1').execute()).toEqual([]);
  });

  it('fails the records whose owner is not a member or cannot hold the scopes, and imports the rest', async () => {
    await addMember(t, owner, 'member@example.com', 'member');
    const keys = [legacyKey(), legacyKey(), legacyKey(), legacyKey()];
    secrets.push(...keys);
    const response = await importBatch([
      record({ externalId: 'ok', plaintext: keys[0], owner: { email: 'member@example.com' } }),
      record({ externalId: 'stranger', plaintext: keys[1], owner: { email: 'stranger@example.com' } }),
      record({ externalId: 'too-much', plaintext: keys[2], owner: { email: 'member@example.com' }, scopes: ['tokens:manage'] }),
      record({ externalId: 'beyond-importer', plaintext: keys[3], scopes: ['reports:read'] }),
    ]);
    expect(response.statusCode, response.body).toBe(200);
    const body = json(response);
    expect(body).toMatchObject({ created: 1, failed: 3 });
    const [ok, stranger, tooMuch, beyond] = body.results;
    expect(ok).toMatchObject({ status: 'created' });
    expect(stranger).toMatchObject({ status: 'failed', errors: [{ field: 'owner/email', message: 'is not a member of this organization' }] });
    expect(tooMuch.status).toBe('failed');
    expect(tooMuch.errors).toContainEqual({ field: 'scopes', message: "the owner's role (member) cannot hold tokens:manage" });
    expect(beyond.status).toBe('failed');
    expect(beyond.errors).toContainEqual({ field: 'scopes', message: expect.stringContaining('reports:read') });
    expect(json(await verify(keys[0]!)).valid).toBe(true);
    expect(json(await verify(keys[2]!))).toMatchObject({ valid: false, code: 'NOT_FOUND' });
  });

  it('refuses a malformed batch as a whole with field pointers, and a record with both or neither form of the key', async () => {
    const key = legacyKey();
    secrets.push(key);
    const invalid = expectProblem(await importBatch([record({ externalId: 'x', sha256: 'not-hex', prefix: LEGACY_PREFIX })]), 400, 'validation_failed');
    expect(invalid.errors).toContainEqual(expect.objectContaining({ field: 'records/0/sha256' }));
    const judged = json(await importBatch([record({ externalId: 'both', plaintext: key, sha256: sha256Digest(key), prefix: LEGACY_PREFIX }), record({ externalId: 'neither' })]));
    expect(judged.results.map((result: any) => [result.status, result.errors[0].field])).toEqual([
      ['failed', 'plaintext'],
      ['failed', 'plaintext'],
    ]);
  });

  it('refuses keys that would never verify: no legacy prefix, or a hash without a configured prefix', async () => {
    const response = json(await importBatch([
      record({ externalId: 'bare', plaintext: `pk_${randomBase62(32)}` }),
      record({ externalId: 'hash', sha256: sha256Digest('whatever'), prefix: 'pk_' }),
    ]));
    expect(response.results.map((result: any) => result.errors[0].field)).toEqual(['plaintext', 'prefix']);
  });

  it('writes nothing on a dry run', async () => {
    const key = legacyKey();
    secrets.push(key);
    const body = json(await importBatch([record({ externalId: 'dry', plaintext: key })], owner, { dryRun: true }));
    expect(body).toMatchObject({ dryRun: true, created: 1, results: [{ status: 'created', tokenId: null }] });
    expect(json(await verify(key))).toMatchObject({ valid: false, code: 'NOT_FOUND' });
    expect(json(await importBatch([record({ externalId: 'dry', plaintext: key })])).created).toBe(1);
  });

  it('refuses a legacy-prefixed key with a wrong secret as NOT_FOUND, and keeps the checksum pre-check for native tokens', async () => {
    const key = legacyKey();
    secrets.push(key);
    await importBatch([record({ externalId: 'real', plaintext: key })]);
    const wrong = `${key.slice(0, -1)}${key.endsWith('a') ? 'b' : 'a'}`;
    expect(json(await verify(wrong))).toMatchObject({ valid: false, code: 'NOT_FOUND' });
    expect(json(await verify(`${LEGACY_PREFIX}short`))).toMatchObject({ valid: false, code: 'MALFORMED' });
    expect(json(await verify(`pk_${randomBase62(32)}`))).toMatchObject({ valid: false, code: 'MALFORMED' });
    const native = generateToken('kw_pat');
    const badChecksum = `${native.slice(0, -1)}${native.endsWith('a') ? 'b' : 'a'}`;
    expect(json(await verify(badChecksum))).toMatchObject({ valid: false, code: 'MALFORMED' });
  });

  it('sees a revoked imported key refused at the very next verification', async () => {
    const key = legacyKey();
    secrets.push(key);
    const id = json(await importBatch([record({ externalId: 'to-revoke', plaintext: key })])).results[0].tokenId as string;
    expect(json(await verify(key)).valid).toBe(true);
    const revoked = await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: bearer(owner) });
    expect(revoked.statusCode).toBe(204);
    expect(json(await verify(key))).toMatchObject({ valid: false, code: 'REVOKED' });
    expectInvalidToken(await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(key) }));
  });

  it('revokes leaked imported keys reported by their plaintext, whether imported as plaintext or as a SHA-256 hash', async () => {
    const [plain, hashed] = [legacyKey(), legacyKey()];
    secrets.push(plain, hashed, sha256Digest(hashed));
    const results = json(
      await importBatch([record({ externalId: 'leak-plain', plaintext: plain }), record({ externalId: 'leak-hashed', sha256: sha256Digest(hashed), prefix: LEGACY_PREFIX })]),
    ).results as Array<{ tokenId: string }>;
    const reported = await t.app.inject({ method: 'POST', url: '/api/v1/tokens/revoke-leaked', headers: bearer(owner), payload: { tokens: [plain, hashed] } });
    expect(reported.statusCode).toBe(202);

    expect(json(await verify(plain))).toMatchObject({ valid: false, code: 'REVOKED' });
    expect(json(await verify(hashed))).toMatchObject({ valid: false, code: 'REVOKED' });
    const audited = await t.context.deps.store.listAuditEvents({ organizationId: t.organizationId, limit: 100, action: 'token.leak_reported' });
    expect(audited.map((event) => event.target?.id).sort()).toEqual(results.map((result) => result.tokenId).sort());
  });

  it('imports service tokens for an API client', async () => {
    const client = json(await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'legacy-partner' } }));
    const key = `acme-${randomBase62(40)}`;
    secrets.push(key);
    const body = json(await importBatch([record({ externalId: 'svc-1', plaintext: key, owner: { clientId: client.id } })]));
    expect(body.results[0]).toMatchObject({ status: 'created' });
    expect(json(await verify(key))).toMatchObject({ valid: true, token: { kind: 'client', owner: { type: 'client', id: client.id } } });
  });
});
