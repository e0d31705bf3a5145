import { afterEach, beforeEach, expect, it } from 'vitest';
import { verifyWebhook } from '../../../sdk/src/webhooks/verify-webhook.ts';
import { describeEachDialect } from '../storage/test-databases.ts';
import { auditActions, bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.ts';
import { UnusedTokenRevocationJob } from './unused-token-revocation.ts';

const DAY_MS = 86_400_000;

describeEachDialect('the token-hygiene jobs', (open) => {
  let t: TestApp;
  let owner: string;
  let receiver: WebhookReceiver;
  let secret: string;
  let seen = 0;

  beforeEach(async () => {
    seen = 0;
    receiver = await startWebhookReceiver();
    t = await createTestApp(open, { env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' } });
    owner = await ownerToken(t, { expiresInDays: 365 });
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: bearer(owner), payload: { url: receiver.url, events: ['token.revoked', 'token.expired'] } });
    secret = json(response).secret;
  });
  afterEach(async () => {
    await t.close();
    await receiver.close();
  });

  /** The events delivered since the last call, verified as a receiver would. */
  async function delivered(): Promise<Array<{ type: string; data: Record<string, any> }>> {
    while ((await t.context.webhooks.runOnce()) > 0);
    const fresh = receiver.received.slice(seen);
    seen = receiver.received.length;
    return fresh.map((delivery) => {
      const event = verifyWebhook<Record<string, any>>(delivery.body, delivery.headers, secret, { now: t.clock.now });
      return { type: event.type, data: event.data };
    });
  }

  async function setPolicy(tokenPolicy: Record<string, unknown>): Promise<void> {
    const response = await t.app.inject({ method: 'PATCH', url: '/api/v1/organizations/current', headers: bearer(owner), payload: { tokenPolicy } });
    expect(response.statusCode, response.body).toBe(200);
  }

  /** Uses a token the way a client does, and writes its last use now rather than at the next timer. */
  async function use(token: string): Promise<void> {
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) })).statusCode).toBe(200);
    await t.context.verifier.flush();
  }

  async function statusOf(id: string): Promise<string> {
    return json(await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers: bearer(owner) })).status;
  }

  async function tokenExists(id: string): Promise<boolean> {
    return (await t.database.db.selectFrom('tokens').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  it('revokes tokens unused for longer than the policy allows, as system, with a token.revoked event, once', async () => {
    const idle = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 365 });
    const busy = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 365 });
    // Off by default: nothing is revoked however long a token sits unused.
    t.clock.advance(40 * DAY_MS);
    expect(await t.context.unusedTokens.runOnce()).toBe(0);

    await setPolicy({ revokeUnusedAfterDays: 30 });
    await use(busy.token);
    expect(await t.context.unusedTokens.runOnce()).toBe(1);
    expect(await t.context.unusedTokens.runOnce()).toBe(0);
    expect(await statusOf(idle.id)).toBe('revoked');
    expect(await statusOf(busy.id)).toBe('active');
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(idle.token) })).statusCode).toBe(401);

    const [audit] = await auditActions(t, { targetId: idle.id, action: 'token.revoked' });
    expect(audit).toMatchObject({ actor: { type: 'system', id: null }, authMethod: 'system', details: { reason: 'unused', unusedForDays: 30 } });
    expect(await delivered()).toEqual([{ type: 'token.revoked', data: expect.objectContaining({ token: expect.objectContaining({ id: idle.id }), actor: { type: 'system', id: null }, reason: 'unused' }) }]);

    // Used 20 days ago is within the policy; 31 days ago is not.
    t.clock.advance(20 * DAY_MS);
    await use(owner);
    expect(await t.context.unusedTokens.runOnce()).toBe(0);
    t.clock.advance(11 * DAY_MS);
    await use(owner);
    expect(await t.context.unusedTokens.runOnce()).toBe(1);
    expect(await statusOf(busy.id)).toBe('revoked');
  });

  it('leaves expired and rotated-out tokens to their own end', async () => {
    await setPolicy({ revokeUnusedAfterDays: 1 });
    const short = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 1 });
    const rotated = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 30 });
    const rotation = await t.app.inject({ method: 'POST', url: `/api/v1/tokens/${rotated.id}/rotate`, headers: bearer(owner), payload: { gracePeriodSeconds: 86_400 } });
    expect(rotation.statusCode).toBe(201);
    t.clock.advance(DAY_MS + 1000);
    await use(owner);
    await use(json(rotation).token);
    expect(await t.context.unusedTokens.runOnce()).toBe(0);
    expect(await statusOf(short.id)).toBe('expired');
  });

  it('runs the unused-token job on one replica at a time', async () => {
    await setPolicy({ revokeUnusedAfterDays: 1 });
    await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 30 });
    t.clock.advance(2 * DAY_MS);
    await use(owner);
    const options = { db: t.database.db, read: t.database.capabilities.readTimestamp, now: t.clock.now, log: t.app.log, deps: t.context.deps };
    const [first, second] = [new UnusedTokenRevocationJob(options), new UnusedTokenRevocationJob(options)];
    const counts = await Promise.all([first.runOnce(), second.runOnce()]);
    expect([...counts].sort()).toEqual([0, 1]);
    expect(await delivered()).toHaveLength(1);
  });

  it('sends token.expired once per token, after it expires, and never for a revoked one', async () => {
    const expiring = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 2 });
    const revoked = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 2 });
    await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: bearer(owner) });
    await delivered();
    t.clock.advance(DAY_MS);
    expect(await t.context.expiredTokens.runOnce()).toBe(0);
    t.clock.advance(DAY_MS + 1000);
    expect(await t.context.expiredTokens.runOnce()).toBe(1);
    expect(await t.context.expiredTokens.runOnce()).toBe(0);
    t.clock.advance(DAY_MS);
    expect(await t.context.expiredTokens.runOnce()).toBe(0);
    const events = await delivered();
    expect(events).toEqual([{ type: 'token.expired', data: { token: expect.objectContaining({ id: expiring.id }), expiredAt: expiring.body.expiresAt } }]);
    expect(JSON.stringify(events)).not.toContain(expiring.token);
  });

  it('purges nothing while retention is off, and never a live token', async () => {
    const revoked = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 365 });
    await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: bearer(owner) });
    // Created long before the cutoff, never used: age alone never makes a token a candidate.
    const live = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 365 });
    t.clock.advance(100 * DAY_MS);
    expect(await t.context.retention.runOnce()).toBe(0);
    expect(await tokenExists(revoked.id)).toBe(true);

    await setPolicy({ retentionDays: 30 });
    expect(await t.context.retention.runOnce()).toBeGreaterThan(0);
    expect(await tokenExists(revoked.id)).toBe(false);
    expect(await tokenExists(live.id)).toBe(true);
    expect(await statusOf(live.id)).toBe('active');
  });

  it('purges a rotated-out token once its grace period is older than the retention, and never a disabled or freshly rotated one', async () => {
    await setPolicy({ retentionDays: 30 });
    const old = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 365 });
    const rotation = await t.app.inject({ method: 'POST', url: `/api/v1/tokens/${old.id}/rotate`, headers: bearer(owner), payload: { gracePeriodSeconds: 3600 } });
    expect(rotation.statusCode).toBe(201);
    const disabled = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 365 });
    const disabling = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${disabled.id}`, headers: bearer(owner), payload: { enabled: false } });
    expect(disabling.statusCode, disabling.body).toBe(200);

    t.clock.advance(29 * DAY_MS);
    await t.context.retention.runOnce();
    expect(await tokenExists(old.id)).toBe(true);
    t.clock.advance(2 * DAY_MS);
    await t.context.retention.runOnce();
    expect(await tokenExists(old.id)).toBe(false);
    expect(await tokenExists(json(rotation).id)).toBe(true);
    expect(await tokenExists(disabled.id)).toBe(true);
  });

  it('purges tokens revoked or expired longer ago than the retention, with their dependent rows, and old audit events, usage and webhooks', async () => {
    const resource = json(await t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(owner), payload: { type: 'project', name: 'alpha' } }));
    const expired = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 2, resources: [resource.id] });
    const revokedLate = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 365 });
    // An expiry warning and a token.expired mark: rows that hang off the token.
    t.clock.advance(1.5 * DAY_MS);
    await t.context.expiryWarnings.runOnce();
    t.clock.advance(DAY_MS);
    expect(await t.context.expiredTokens.runOnce()).toBe(1);
    expect(await delivered()).toHaveLength(1);
    const verifier = await passwordToken(t, { scopes: ['keyward:verify'], expiresInDays: 365 });
    const verification = await t.app.inject({ method: 'POST', url: '/api/v1/verify', headers: bearer(verifier.token), payload: { token: expired.token } });
    expect(json(verification)).toMatchObject({ valid: false, code: 'EXPIRED' });
    await t.context.usage.flush();
    const usageBefore = await t.database.db.selectFrom('usage_counts' as never).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(usageBefore.n)).toBeGreaterThan(0);

    t.clock.advance(20 * DAY_MS);
    await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revokedLate.id}`, headers: bearer(owner) });
    await setPolicy({ retentionDays: 30 });
    t.clock.advance(15 * DAY_MS);
    await use(owner);
    // 36.5 days after the first events, 15 after the late revocation.
    expect(await t.context.retention.runOnce()).toBeGreaterThan(0);
    expect(await tokenExists(expired.id)).toBe(false);
    expect(await t.database.db.selectFrom('tokenResources').select('tokenId').where('tokenId', '=', expired.id).execute()).toEqual([]);
    expect(await t.database.db.selectFrom('tokenExpiryWarnings').select('tokenId').where('tokenId', '=', expired.id).execute()).toEqual([]);
    expect(await tokenExists(revokedLate.id)).toBe(true);

    const audit = await auditActions(t);
    const cutoff = t.clock.now().getTime() - 30 * DAY_MS;
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.every((event) => event.at.getTime() >= cutoff)).toBe(true);
    expect(audit.map((event) => event.action)).toContain('token.revoked');
    const oldUsage = await t.database.db
      .selectFrom('usage_counts' as never)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('bucket_start' as never, '<', new Date(cutoff) as never)
      .executeTakeFirstOrThrow();
    expect(Number(oldUsage.n)).toBe(0);
    expect(await t.database.db.selectFrom('webhookDeliveries').select('id').where('createdAt', '<', new Date(cutoff)).execute()).toEqual([]);
    expect(await t.database.db.selectFrom('webhookEvents').select('id').where('createdAt', '<', new Date(cutoff)).execute()).toEqual([]);
    // The late revocation's event is younger than the retention: kept.
    expect((await t.database.db.selectFrom('webhookEvents').select('id').execute()).length).toBeGreaterThan(0);
    // A second round finds nothing more.
    expect(await t.context.retention.runOnce()).toBe(0);
  });
});

describeEachDialect('the retention purge and held webhook deliveries', (open) => {
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeEach(async () => {
    receiver = await startWebhookReceiver();
    t = await createTestApp(open, { env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' } });
  });
  afterEach(async () => {
    await t.close();
    await receiver.close();
  });

  /** An organization's owner token and a disabled endpoint holding one undelivered token.revoked. */
  async function organizationWithHeldDelivery(organization: string): Promise<{ owner: string; organizationId: string }> {
    const owner = await ownerToken(t, { organization, expiresInDays: 365 });
    const endpoint = json(await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: bearer(owner), payload: { url: receiver.url, events: ['token.revoked'] } }));
    const revoked = await passwordToken(t, { scopes: ['tokens:read'], organization });
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: bearer(owner) })).statusCode).toBe(204);
    const disabled = await t.app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${endpoint.id}`, headers: bearer(owner), payload: { enabled: false } });
    expect(disabled.statusCode).toBe(200);
    return { owner, organizationId: revoked.body.organizationId };
  }

  const rowsOf = async (table: 'webhookDeliveries' | 'webhookEvents', organizationId: string) =>
    t.database.db.selectFrom(table).select('id').where('organizationId', '=', organizationId).execute();

  it("purges a disabled endpoint's given-up deliveries and their events by each organization's own retention", async () => {
    const acme = await organizationWithHeldDelivery('acme');
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(acme.owner), payload: { name: 'Globex', slug: 'globex' } });
    expect(created.statusCode).toBe(201);
    const globex = await organizationWithHeldDelivery('globex');
    const policy = await t.app.inject({ method: 'PATCH', url: '/api/v1/organizations/current', headers: bearer(acme.owner), payload: { tokenPolicy: { retentionDays: 30 } } });
    expect(policy.statusCode).toBe(200);

    // Held while disabled: not purged, since it is still owed.
    t.clock.advance(0.5 * DAY_MS);
    await t.context.webhooks.runOnce();
    expect(await t.context.retention.runOnce()).toBe(0);
    expect(await rowsOf('webhookDeliveries', acme.organizationId)).toHaveLength(1);

    t.clock.advance(30 * DAY_MS);
    expect(await t.context.webhooks.runOnce()).toBe(0);
    expect(await t.context.retention.runOnce()).toBeGreaterThan(0);

    expect(await rowsOf('webhookDeliveries', acme.organizationId)).toEqual([]);
    expect(await rowsOf('webhookEvents', acme.organizationId)).toEqual([]);
    // Globex keeps everything: no retention set there. Its delivery was given up, not sent.
    const [kept] = await t.database.db.selectFrom('webhookDeliveries').select(['status', 'attempts']).where('organizationId', '=', globex.organizationId).execute();
    expect(kept).toMatchObject({ status: 'failed' });
    expect(Number(kept!.attempts)).toBe(0);
    expect(await rowsOf('webhookEvents', globex.organizationId)).toHaveLength(1);
    expect(receiver.received).toEqual([]);
  });
});
