import { generateToken } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import type { KyselyPlugin as Plugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VerificationStore } from '../../storage/verification-rows.ts';
import { describeEachDialect } from '../../storage/test-databases.ts';
import type { Database } from '../../storage/index.ts';
import { addMember, bearer, createTestApp, expectProblem, json, ownerToken, passwordToken, PASSWORD, type TestApp } from '../../testing/test-app.ts';

const DAY_MS = 86_400_000;

/** Counts the statements that change data, to prove the hot path writes nothing. */
class WriteCounter implements Plugin {
  writes = 0;
  /** Writes other than the usage counters, which a timer flushes in batches whatever the traffic. */
  writesBesidesUsage = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const kind = args.node.kind;
    if (kind === 'InsertQueryNode' || kind === 'UpdateQueryNode' || kind === 'DeleteQueryNode') {
      this.writes++;
      if (!/"(usage_counts|usageCounts)"/.test(JSON.stringify(args.node))) this.writesBesidesUsage++;
    }
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

describeEachDialect('token verification', (open) => {
  let t: TestApp;
  let owner: string;
  let verifierToken: string;
  let clientId: string;
  const counter = new WriteCounter();

  async function openCounted(): Promise<Database> {
    const database = await open();
    return { ...database, db: database.db.withPlugin(counter) };
  }

  beforeEach(async () => {
    counter.writes = 0;
    counter.writesBesidesUsage = 0;
    t = await createTestApp(openCounted);
    owner = await ownerToken(t, { scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read', 'keyward:verify', 'scans:*', 'clearances:*', 'reports:read'] });
    const client = await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'api-gateway' } });
    clientId = json(client).id;
    const issued = await t.app.inject({ method: 'POST', url: `/api/v1/clients/${clientId}/tokens`, headers: bearer(owner), payload: { name: 'verifier', scopes: ['keyward:verify'] } });
    expect(issued.statusCode, issued.body).toBe(201);
    verifierToken = json(issued).token;
  });
  afterEach(async () => {
    await t.close();
  });

  function verify(body: Record<string, unknown>, caller = verifierToken): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'POST', url: '/api/v1/verify', headers: bearer(caller), payload: body });
  }

  async function code(body: Record<string, unknown>): Promise<string> {
    const response = await verify(body);
    expect(response.statusCode, response.body).toBe(200);
    return json(response).code as string;
  }

  async function resource(name: string): Promise<string> {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(owner), payload: { type: 'project', name } });
    expect(response.statusCode, response.body).toBe(201);
    return json(response).id as string;
  }

  describe('POST /api/v1/verify', () => {
    it('answers VALID with the effective scopes, permission and ranked resources, and nothing secret', async () => {
      const first = await resource('alpha');
      const second = await resource('beta');
      const token = await passwordToken(t, { scopes: ['scans:read', 'clearances:read'], resources: [second, first], metadata: { team: 'red' } });
      const response = await verify({ token: token.token, scopes: ['scans:read'] });
      expect(response.statusCode).toBe(200);
      const body = json(response);
      expect(body).toEqual({
        valid: true,
        code: 'VALID',
        token: {
          id: token.id,
          name: token.body.name,
          kind: 'personal',
          owner: { type: 'user', id: t.ownerId },
          organizationId: t.organizationId,
          scopes: ['clearances:read', 'scans:read'],
          permission: 'owner',
          resources: [
            { id: second, type: 'project', name: 'beta' },
            { id: first, type: 'project', name: 'alpha' },
          ],
          expiresAt: token.body.expiresAt,
          metadata: { team: 'red' },
        },
      });
      expect(response.body).not.toContain(token.token);
    });

    it('answers MALFORMED for garbage and a typo, before any lookup', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      const typo = `${token.token.slice(0, 20)}${token.token[20] === 'a' ? 'b' : 'a'}${token.token.slice(21)}`;
      expect(await code({ token: 'not-a-token' })).toBe('MALFORMED');
      expect(await code({ token: typo })).toBe('MALFORMED');
    });

    it('answers NOT_FOUND for a well-formed unknown token', async () => {
      expect(await code({ token: generateToken('kw_pat') })).toBe('NOT_FOUND');
    });

    it("answers NOT_FOUND for another organization's token, never a hint that it exists", async () => {
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(owner), payload: { name: 'Other', slug: 'other' } });
      expect(created.statusCode, created.body).toBe(201);
      const other = await passwordToken(t, { scopes: ['scans:read'], organization: 'other' });
      expect(await code({ token: other.token })).toBe('NOT_FOUND');
      expect(await code({ token: other.token, scopes: ['scans:write'] })).toBe('NOT_FOUND');
    });

    it('answers EXPIRED once the expiry has passed, though the token was cached', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], expiresInDays: 1 });
      expect(await code({ token: token.token })).toBe('VALID');
      t.clock.advance(DAY_MS + 1);
      expect(await code({ token: token.token })).toBe('EXPIRED');
    });

    it('refuses a revoked token at the very next verification', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      expect(await code({ token: token.token })).toBe('VALID');
      expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${token.id}`, headers: bearer(owner) })).statusCode).toBe(204);
      expect(await code({ token: token.token })).toBe('REVOKED');
    });

    it('refuses a disabled token at the very next verification, and accepts it again once enabled', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      expect(await code({ token: token.token })).toBe('VALID');
      const patch = (enabled: boolean) => t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${token.id}`, headers: bearer(owner), payload: { enabled } });
      expect((await patch(false)).statusCode).toBe(200);
      expect(await code({ token: token.token })).toBe('DISABLED');
      expect((await patch(true)).statusCode).toBe(200);
      expect(await code({ token: token.token })).toBe('VALID');
    });

    it('refuses a rotated successor disabled during its parent\'s grace period at the very next verification', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      const rotated = await t.app.inject({ method: 'POST', url: `/api/v1/tokens/${token.id}/rotate`, headers: bearer(owner), payload: { gracePeriodSeconds: 3600 } });
      expect(rotated.statusCode, rotated.body).toBe(201);
      const successor = json(rotated) as { id: string; token: string };
      expect(await code({ token: successor.token })).toBe('VALID');
      expect(await code({ token: token.token })).toBe('VALID');
      const disabled = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${successor.id}`, headers: bearer(owner), payload: { enabled: false } });
      expect(disabled.statusCode, disabled.body).toBe(200);
      expect(await code({ token: successor.token })).toBe('DISABLED');
    });

    it('sees a PATCH of the scopes at the very next verification', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read', 'scans:write'] });
      expect(await code({ token: token.token, scopes: ['scans:write'] })).toBe('VALID');
      expect((await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${token.id}`, headers: bearer(owner), payload: { scopes: ['scans:read'] } })).statusCode).toBe(200);
      expect(await code({ token: token.token, scopes: ['scans:write'] })).toBe('INSUFFICIENT_SCOPE');
    });

    it('answers INSUFFICIENT_SCOPE for a missing scope, and judges require expressions', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read', 'clearances:read'] });
      expect(await code({ token: token.token, scopes: ['scans:read', 'scans:write'] })).toBe('INSUFFICIENT_SCOPE');
      expect(await code({ token: token.token, require: 'scans:read AND (clearances:read OR clearances:write)' })).toBe('VALID');
      expect(await code({ token: token.token, require: 'scans:write OR clearances:write' })).toBe('INSUFFICIENT_SCOPE');
    });

    it('answers a malformed require expression with 400 validation_failed naming require, not an invalid token', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      const body = expectProblem(await verify({ token: token.token, require: 'scans:read AND (' }), 400, 'validation_failed');
      expect(body.errors).toEqual([expect.objectContaining({ field: 'require' })]);
      expectProblem(await verify({ token: token.token, require: 'x'.repeat(1001) }), 400, 'validation_failed');
    });

    it('answers FORBIDDEN_RESOURCE outside the ranked grants, and for a resource of another organization', async () => {
      const granted = await resource('granted');
      const other = await resource('other');
      const limited = await passwordToken(t, { scopes: ['scans:read'], resources: [granted] });
      expect(await code({ token: limited.token, resource: granted })).toBe('VALID');
      expect(await code({ token: limited.token, resource: other })).toBe('FORBIDDEN_RESOURCE');
      const everything = await passwordToken(t, { scopes: ['scans:read'] });
      expect(await code({ token: everything.token, resource: other })).toBe('VALID');
      expect(await code({ token: everything.token, resource: 'res_elsewhere' })).toBe('FORBIDDEN_RESOURCE');
    });

    it('sees a deleted resource at the very next verification', async () => {
      const granted = await resource('granted');
      const token = await passwordToken(t, { scopes: ['scans:read'], resources: [granted] });
      expect(await code({ token: token.token, resource: granted })).toBe('VALID');
      expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/resources/${granted}`, headers: bearer(owner) })).statusCode).toBe(204);
      expect(await code({ token: token.token, resource: granted })).toBe('FORBIDDEN_RESOURCE');
    });

    it('answers IP_NOT_ALLOWED outside the allowlist and when no address is given', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], allowedIps: ['10.0.0.0/8'] });
      expect(await code({ token: token.token, ip: '10.1.2.3' })).toBe('VALID');
      expect(await code({ token: token.token, ip: '192.0.2.1' })).toBe('IP_NOT_ALLOWED');
      expect(await code({ token: token.token })).toBe('IP_NOT_ALLOWED');
      expectProblem(await verify({ token: token.token, ip: 'not-an-ip' }), 400, 'validation_failed');
    });

    it("narrows a member's token when the member is demoted, and refuses it once they are removed", async () => {
      const userId = await addMember(t, owner, 'dev@example.com', 'member');
      const token = await passwordToken(t, { scopes: ['scans:read', 'scans:write'] }, 'dev@example.com', PASSWORD);
      expect(await code({ token: token.token, scopes: ['scans:write'] })).toBe('VALID');
      await t.app.inject({ method: 'PATCH', url: `/api/v1/members/${userId}`, headers: bearer(owner), payload: { role: 'viewer' } });
      expect(await code({ token: token.token, scopes: ['scans:write'] })).toBe('INSUFFICIENT_SCOPE');
      expect(await code({ token: token.token, scopes: ['scans:read'] })).toBe('VALID');
      await t.app.inject({ method: 'DELETE', url: `/api/v1/members/${userId}`, headers: bearer(owner) });
      expect(['NOT_FOUND', 'REVOKED']).toContain(await code({ token: token.token }));
    });

    it("refuses a client's service tokens once the client is deleted", async () => {
      const client = json(await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'customer' } }));
      const issued = json(await t.app.inject({ method: 'POST', url: `/api/v1/clients/${client.id}/tokens`, headers: bearer(owner), payload: { name: 'svc', scopes: ['scans:read'] } }));
      expect(await code({ token: issued.token })).toBe('VALID');
      expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/clients/${client.id}`, headers: bearer(owner) })).statusCode).toBe(204);
      expect(['NOT_FOUND', 'REVOKED']).toContain(await code({ token: issued.token }));
    });

    it('answers RATE_LIMITED with the limit state once the token spent its window', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], rateLimit: { limit: 2, windowSeconds: 60 } });
      const first = json(await verify({ token: token.token }));
      expect(first).toMatchObject({ valid: true, code: 'VALID', rateLimit: { limit: 2, remaining: 1 } });
      expect(json(await verify({ token: token.token }))).toMatchObject({ code: 'VALID', rateLimit: { remaining: 0 } });
      const limited = await verify({ token: token.token });
      expect(limited.statusCode).toBe(200);
      expect(json(limited)).toEqual({ valid: false, code: 'RATE_LIMITED', rateLimit: { limit: 2, remaining: 0, resetAt: expect.any(String) } });
    });

    it("answers RATE_LIMITED once an API client's tokens together spend the client's limit", async () => {
      const client = json(await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'metered', rateLimit: { limit: 3, windowSeconds: 60 } } }));
      expect(client.rateLimit).toEqual({ limit: 3, windowSeconds: 60 });
      const issue = async (name: string) =>
        json(await t.app.inject({ method: 'POST', url: `/api/v1/clients/${client.id}/tokens`, headers: bearer(owner), payload: { name, scopes: ['scans:read'] } })).token as string;
      const first = await issue('one');
      const second = await issue('two');
      expect(await code({ token: first })).toBe('VALID');
      expect(await code({ token: second })).toBe('VALID');
      expect(await code({ token: first })).toBe('VALID');
      expect(json(await verify({ token: second }))).toMatchObject({ valid: false, code: 'RATE_LIMITED', rateLimit: { limit: 3, remaining: 0 } });
    });

    it("applies a changed client limit at the very next verification", async () => {
      const client = json(await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'later' } }));
      const token = json(await t.app.inject({ method: 'POST', url: `/api/v1/clients/${client.id}/tokens`, headers: bearer(owner), payload: { name: 'svc', scopes: ['scans:read'] } })).token as string;
      expect(await code({ token })).toBe('VALID');
      const patched = await t.app.inject({ method: 'PATCH', url: `/api/v1/clients/${client.id}`, headers: bearer(owner), payload: { rateLimit: { limit: 1, windowSeconds: 60 } } });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(await code({ token })).toBe('VALID');
      expect(await code({ token })).toBe('RATE_LIMITED');
    });

    it("spends a quota exactly under concurrency: N verifications against N/2 credits give exactly N/2 VALID", async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], remaining: 10 });
      const answers = await Promise.all(Array.from({ length: 20 }, () => verify({ token: token.token })));
      const codes = answers.map((answer) => json(answer).code as string);
      expect(codes.filter((c) => c === 'VALID')).toHaveLength(10);
      expect(codes.filter((c) => c === 'USAGE_EXCEEDED')).toHaveLength(10);
      expect(json(await verify({ token: token.token }))).toEqual({ valid: false, code: 'USAGE_EXCEEDED', remaining: 0 });
      const stored = await t.context.deps.store.findToken(t.organizationId, token.id);
      expect(stored).toMatchObject({ remaining: 0, revokedAt: null });
    });

    it('spends `cost` credits and never goes below zero', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], remaining: 5 });
      expect(json(await verify({ token: token.token, cost: 3 }))).toMatchObject({ code: 'VALID', remaining: 2 });
      expect(json(await verify({ token: token.token, cost: 3 }))).toEqual({ valid: false, code: 'USAGE_EXCEEDED', remaining: 2 });
      expect(json(await verify({ token: token.token, cost: 0 }))).toMatchObject({ code: 'VALID', remaining: 2 });
    });

    it('refills a quota when its period turns', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], remaining: 1, refill: { amount: 3, interval: 'daily' } });
      expect(json(await verify({ token: token.token }))).toMatchObject({ code: 'VALID', remaining: 0 });
      expect(await code({ token: token.token })).toBe('USAGE_EXCEEDED');
      t.clock.advance(DAY_MS);
      expect(json(await verify({ token: token.token }))).toMatchObject({ code: 'VALID', remaining: 2 });
    });

    it('takes a quota set or topped up by PATCH at the very next verification, and lists it', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      expect(json(await verify({ token: token.token }))).not.toHaveProperty('remaining');
      const patch = (body: Record<string, unknown>, caller = owner) => t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${token.id}`, headers: bearer(caller), payload: body });
      const limited = await patch({ remaining: 1, refill: { amount: 5, interval: 'monthly' } });
      expect(limited.statusCode, limited.body).toBe(200);
      expect(json(limited)).toMatchObject({ remaining: 1, refill: { amount: 5, interval: 'monthly' } });
      expect(json(await verify({ token: token.token }))).toMatchObject({ code: 'VALID', remaining: 0 });
      expect(await code({ token: token.token })).toBe('USAGE_EXCEEDED');
      expect((await patch({ remaining: 2 })).statusCode).toBe(200);
      expect(json(await verify({ token: token.token }))).toMatchObject({ code: 'VALID', remaining: 1 });
      const listed = json(await t.app.inject({ method: 'GET', url: '/api/v1/tokens?all=true', headers: bearer(owner) }));
      expect(listed.items.find((item: { id: string }) => item.id === token.id)).toMatchObject({ remaining: 1, refill: { amount: 5, interval: 'monthly' } });
      expect((await patch({ remaining: null, refill: null })).statusCode).toBe(200);
      expect(json(await verify({ token: token.token }))).toEqual(expect.objectContaining({ code: 'VALID' }));
      expectProblem(await patch({ refill: { amount: 5, interval: 'daily' } }), 400, 'validation_failed');
    });

    it('refuses a token that tops up its own quota', async () => {
      const token = await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'], remaining: 3 });
      const raised = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${token.id}`, headers: bearer(token.token), payload: { remaining: 1000 } });
      expectProblem(raised, 403, 'forbidden');
      const lowered = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${token.id}`, headers: bearer(token.token), payload: { remaining: 1 } });
      expect(lowered.statusCode, lowered.body).toBe(200);
    });

    it('needs keyward:verify from its caller', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      expectProblem(await verify({ token: token.token }, token.token), 403, 'insufficient_scope');
      const anonymous = await t.app.inject({ method: 'POST', url: '/api/v1/verify', payload: { token: token.token } });
      expectProblem(anonymous, 401, 'unauthenticated');
    });

    it('writes nothing to the database during a burst of cached verifications', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      await verify({ token: token.token });
      const before = counter.writesBesidesUsage;
      for (let i = 0; i < 200; i++) expect(await code({ token: token.token })).toBe('VALID');
      // On a slow machine the usage timer may fire during the burst: a batch, not a write per verification.
      expect(counter.writesBesidesUsage - before).toBe(0);
      // The usage counters do reach the database, in one batch, when flushed.
      expect(await code({ token: token.token })).toBe('VALID');
      const writesBeforeFlush = counter.writes;
      await t.context.usage.flush();
      expect(counter.writes).toBeGreaterThan(writesBeforeFlush);
      expect(counter.writesBesidesUsage - before).toBe(0);
    });

    it('writes last use once per token per flush, not once per verification', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      await t.context.verifier.flush();
      for (let i = 0; i < 5; i++) await verify({ token: token.token, ip: '203.0.113.9' });
      const before = counter.writes;
      await t.context.verifier.flush();
      // One statement for both tokens used: the verified one and the verifier's own.
      expect(counter.writes - before).toBe(1);
      const stored = await t.context.deps.store.findToken(t.organizationId, token.id);
      expect(stored?.lastUsedAt?.toISOString()).toBe(t.clock.now().toISOString());
      expect(stored?.lastUsedIp).toBe('203.0.113.9');
    });

    it('does not put a token revoked during an in-flight lookup back into the cache', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      // The verify caller's own token is cached first, so the only lookup held below is the target's.
      expect(await code({ token: generateToken('kw_pat') })).toBe('NOT_FOUND');
      const original = VerificationStore.prototype.findTokenForVerification;
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      let readDone: () => void = () => {};
      const read = new Promise<void>((resolve) => (readDone = resolve));
      const lookup = vi.spyOn(VerificationStore.prototype, 'findTokenForVerification').mockImplementation(async function (this: VerificationStore, digests) {
        const found = await original.call(this, digests);
        readDone();
        await gate;
        return found;
      });
      const inFlight = verify({ token: token.token });
      await read;
      // The read has the token as live; now it is revoked before the read returns.
      expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${token.id}`, headers: bearer(owner) })).statusCode).toBe(204);
      // A verification that starts now must not join the stale lookup still in flight.
      const startedAfter = verify({ token: token.token });
      release();
      await inFlight;
      expect(json(await startedAfter).code).toBe('REVOKED');
      lookup.mockRestore();
      expect(await code({ token: token.token })).toBe('REVOKED');
    });
  });

  describe('usage and metrics', () => {
    it('counts every verification by token and outcome code, seen in GET /usage after a flush', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      for (let i = 0; i < 3; i++) await verify({ token: token.token });
      await verify({ token: token.token, scopes: ['scans:write'] });
      await verify({ token: generateToken('kw_pat') });
      await t.context.usage.flush();
      const perToken = json(await t.app.inject({ method: 'GET', url: `/api/v1/usage?granularity=day&tokenId=${token.id}`, headers: bearer(owner) }));
      expect(perToken.buckets).toEqual([expect.objectContaining({ total: 4, counts: { VALID: 3, INSUFFICIENT_SCOPE: 1 } })]);
      const organization = json(await t.app.inject({ method: 'GET', url: '/api/v1/usage?granularity=day', headers: bearer(owner) }));
      expect(organization.buckets).toEqual([expect.objectContaining({ total: 5, counts: { VALID: 3, INSUFFICIENT_SCOPE: 1, NOT_FOUND: 1 } })]);
    });

    it('reports verifications by entry point and code, and cache lookups, in /metrics', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      await verify({ token: token.token });
      await verify({ token: token.token });
      await verify({ token: 'garbage' });
      const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/keyward_verifications_total\{[^}]*entry_point="verify"[^}]*code="VALID"[^}]*\} 2/);
      expect(metrics).toMatch(/keyward_verifications_total\{[^}]*entry_point="verify"[^}]*code="MALFORMED"[^}]*\} 1/);
      expect(metrics).toMatch(/keyward_token_cache_lookups_total\{[^}]*result="hit"/);
      expect(metrics).toMatch(/keyward_verify_duration_seconds_bucket/);
    });
  });

  describe("the entry points' own context", () => {
    function expectApiHeaders(response: LightMyRequestResponse): void {
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
      expect(response.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'self'");
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }

    it('answers with the security headers, no-store and a request id, whether the answer is a yes, a no or a problem', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      const answers = [
        await verify({ token: token.token }),
        await verify({ token: generateToken('kw_pat') }),
        await t.app.inject({ method: 'POST', url: '/api/v1/verify', payload: { token: token.token } }),
        await t.app.inject({ method: 'GET', url: '/api/v1/authz?scopes=scans:read', headers: bearer(token.token) }),
        await t.app.inject({ method: 'GET', url: '/api/v1/authz?scopes=scans:write', headers: bearer(token.token) }),
        await t.app.inject({ method: 'POST', url: '/oauth/introspect', headers: { ...bearer(verifierToken), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=garbage' }),
      ];
      expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 401, 200, 403, 200]);
      for (const answer of answers) expectApiHeaders(answer);
      expect(answers[2]!.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it("keeps a gateway's sane request id, as every other route does", async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/authz', headers: { ...bearer(token.token), 'x-request-id': 'gateway-req.42_abc' } });
      expect(response.headers['x-request-id']).toBe('gateway-req.42_abc');
    });

    it('answers the same token from its new state once it changed, never from an answer made before', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], metadata: { team: 'red' } });
      const before = await verify({ token: token.token });
      expect(json(before).token).toMatchObject({ name: token.body.name, metadata: { team: 'red' } });
      expect(before.headers['content-type']).toBe('application/json; charset=utf-8');
      expect((await verify({ token: token.token })).body).toBe(before.body);
      const patched = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${token.id}`, headers: bearer(owner), payload: { name: 'renamed', metadata: { team: 'blue' } } });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(json(await verify({ token: token.token })).token).toMatchObject({ name: 'renamed', metadata: { team: 'blue' } });
    });

    it('refuses a NUL character in the body or the query with 400 naming the field', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      expect(expectProblem(await verify({ token: `${token.token}\u0000` }), 400, 'validation_failed').errors).toEqual([{ field: 'token', message: 'must not contain NUL characters' }]);
      expect(expectProblem(await verify({ token: token.token, require: 'scans:read\u0000' }), 400, 'validation_failed').errors).toEqual([{ field: 'require', message: 'must not contain NUL characters' }]);
      const query = await t.app.inject({ method: 'GET', url: '/api/v1/authz?scopes=scans:read%00', headers: bearer(token.token) });
      expect(expectProblem(query, 400, 'validation_failed').errors).toEqual([{ field: 'scopes', message: 'must not contain NUL characters' }]);
    });

    it('records each answer in the request-duration metric under its route and status', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      await verify({ token: token.token });
      await verify({ token: token.token });
      await t.app.inject({ method: 'GET', url: '/api/v1/authz', headers: bearer(generateToken('kw_pat')) });
      const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/keyward_http_request_duration_seconds_count\{[^}]*method="POST",route="\/api\/v1\/verify",status_code="200"[^}]*\} 2/);
      expect(metrics).toMatch(/keyward_http_request_duration_seconds_count\{[^}]*method="GET",route="\/api\/v1\/authz",status_code="401"[^}]*\} 1/);
    });
  });

  describe('management routes', () => {
    it('answer 429 with Retry-After and RateLimit headers for a token over its rate limit', async () => {
      const token = await passwordToken(t, { scopes: ['tokens:read'], rateLimit: { limit: 1, windowSeconds: 60 } });
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token.token) })).statusCode).toBe(200);
      const limited = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token.token) });
      expectProblem(limited, 429, 'rate_limited');
      expect(limited.headers['retry-after']).toMatch(/^\d+$/);
      expect(limited.headers).toMatchObject({ 'ratelimit-limit': '1', 'ratelimit-remaining': '0' });
      expect(limited.headers['ratelimit-reset']).toMatch(/^\d+$/);
    });
  });

  describe('POST /oauth/introspect', () => {
    function introspect(form: string, caller = verifierToken): Promise<LightMyRequestResponse> {
      return t.app.inject({ method: 'POST', url: '/oauth/introspect', headers: { ...bearer(caller), 'content-type': 'application/x-www-form-urlencoded' }, payload: form });
    }

    it('describes an active token as RFC 7662 says', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read', 'clearances:read'] });
      const response = await introspect(`token=${encodeURIComponent(token.token)}&token_type_hint=access_token`);
      expect(response.statusCode, response.body).toBe(200);
      expect(json(response)).toEqual({
        active: true,
        scope: 'clearances:read scans:read',
        username: 'owner@example.com',
        token_type: 'Bearer',
        exp: Math.floor(Date.parse(token.body.expiresAt) / 1000),
        iat: Math.floor(Date.parse(token.body.createdAt) / 1000),
        sub: t.ownerId,
        organization_id: t.organizationId,
        permission: 'owner',
      });
    });

    it('answers exactly {"active": false} for anything not valid', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${token.id}`, headers: bearer(owner) });
      for (const form of [`token=${encodeURIComponent(token.token)}`, 'token=garbage', `token=${generateToken('kw_pat')}`]) {
        const response = await introspect(form);
        expect(response.statusCode).toBe(200);
        expect(response.body).toBe('{"active":false}');
      }
    });

    it('needs a keyward:verify caller and a form body', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      expectProblem(await introspect(`token=${token.token}`, token.token), 403, 'insufficient_scope');
      const asJson = await t.app.inject({ method: 'POST', url: '/oauth/introspect', headers: bearer(verifierToken), payload: { token: token.token } });
      expect(asJson.statusCode).toBe(200);
      const missing = await introspect('token_type_hint=access_token');
      expectProblem(missing, 400, 'validation_failed');
    });
  });

  describe('GET /api/v1/authz', () => {
    function authz(query: string, headers: Record<string, string>): Promise<LightMyRequestResponse> {
      return t.app.inject({ method: 'GET', url: `/api/v1/authz${query}`, headers });
    }

    it('answers 200 with the X-Keyward identity headers', async () => {
      const granted = await resource('granted');
      const token = await passwordToken(t, { scopes: ['scans:read', 'clearances:read'], resources: [granted] });
      const response = await authz(`?scopes=scans:read,clearances:read&resource=${granted}`, bearer(token.token));
      expect(response.statusCode, response.body).toBe(200);
      expect(response.headers).toMatchObject({
        'x-keyward-token-id': token.id,
        'x-keyward-owner': `user:${t.ownerId}`,
        'x-keyward-organization': t.organizationId,
        'x-keyward-scopes': 'clearances:read scans:read',
        'x-keyward-resources': granted,
      });
    });

    it('answers 401 with a Bearer challenge without a token or with a bad one', async () => {
      const none = await authz('', {});
      expectProblem(none, 401, 'unauthenticated');
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      const bad = await authz('', bearer(generateToken('kw_pat')));
      expectProblem(bad, 401, 'unauthenticated');
      expect(bad.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    });

    it('answers 403 insufficient_scope naming the missing scope', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'] });
      const response = await authz('?scopes=scans:read%20scans:write', bearer(token.token));
      expectProblem(response, 403, 'insufficient_scope');
      expect(response.headers['www-authenticate']).toMatch(/scope="scans:write"/);
      expectProblem(await authz('?require=scans:write%20OR%20clearances:write', bearer(token.token)), 403, 'insufficient_scope');
    });

    it('answers 429 with RateLimit headers once the token spent its window', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], rateLimit: { limit: 1, windowSeconds: 60 } });
      const ok = await authz('', bearer(token.token));
      expect(ok.statusCode).toBe(200);
      expect(ok.headers).toMatchObject({ 'ratelimit-limit': '1', 'ratelimit-remaining': '0' });
      const limited = await authz('', bearer(token.token));
      expectProblem(limited, 429, 'rate_limited');
      expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    });

    it('ignores X-Forwarded-For from an address that is not a trusted proxy', async () => {
      const token = await passwordToken(t, { scopes: ['scans:read'], allowedIps: ['127.0.0.1/32'] });
      expect((await authz('', { ...bearer(token.token), 'x-forwarded-for': '203.0.113.7' })).statusCode).toBe(200);
      const elsewhere = await passwordToken(t, { scopes: ['scans:read'], allowedIps: ['203.0.113.7/32'] });
      expectProblem(await authz('', { ...bearer(elsewhere.token), 'x-forwarded-for': '203.0.113.7' }), 403, 'forbidden');
    });
  });
});

describeEachDialect('token verification behind a trusted proxy', (open) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp(open, { env: { KEYWARD_TRUSTED_PROXIES: '127.0.0.1/32' } });
  });
  afterEach(async () => {
    await t.close();
  });

  it('takes the client address from X-Forwarded-For when the request came through the proxy', async () => {
    const token = await passwordToken(t, { scopes: ['scans:read'], allowedIps: ['203.0.113.7/32'] });
    const through = await t.app.inject({ method: 'GET', url: '/api/v1/authz', headers: { ...bearer(token.token), 'x-forwarded-for': '203.0.113.7' } });
    expect(through.statusCode, through.body).toBe(200);
    const spoofed = await t.app.inject({ method: 'GET', url: '/api/v1/authz', headers: { ...bearer(token.token), 'x-forwarded-for': '198.51.100.1' } });
    expectProblem(spoofed, 403, 'forbidden');
  });

  it('answers with HSTS when the request reached the proxy over TLS, and without it otherwise', async () => {
    const token = await passwordToken(t, { scopes: ['scans:read'] });
    const overTls = await t.app.inject({ method: 'GET', url: '/api/v1/authz', headers: { ...bearer(token.token), 'x-forwarded-proto': 'https' } });
    expect(overTls.statusCode, overTls.body).toBe(200);
    expect(overTls.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/authz', headers: bearer(token.token) })).headers['strict-transport-security']).toBeUndefined();
  });
});
