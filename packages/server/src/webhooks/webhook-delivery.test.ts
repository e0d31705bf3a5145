// Webhook deliveries end to end: a real app on a real database, the outbox
// written by real lifecycle changes, the worker posting to a real HTTP
// receiver on 127.0.0.1, and signatures checked with the SDK's verifyWebhook.
import { auditEvent, parseKeyring, newKeyringEntry } from '@keyward/core';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../app.ts';
import { verifyWebhook, type WebhookVerificationError } from '../../../sdk/src/webhooks/verify-webhook.ts';
import { describeEachDialect } from '../storage/test-databases.ts';
import { WebhookStore } from '../storage/webhook-rows.ts';
import { addMember, bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.ts';
import { WebhookWorker } from './delivery-worker.ts';
import { RETRY_WINDOW_MS } from './retry-schedule.ts';

const HOUR_MS = 3_600_000;

describeEachDialect('webhook delivery', (open) => {
  let t: TestApp;
  let owner: string;
  let receiver: WebhookReceiver;

  beforeEach(async () => {
    receiver = await startWebhookReceiver();
    // The receiver listens on loopback, which the SSRF guard refuses by default.
    t = await createTestApp(open, { env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' } });
    owner = await ownerToken(t);
  });
  afterEach(async () => {
    await t.close();
    await receiver.close();
  });

  async function createWebhook(events: string[], url = receiver.url, app = t): Promise<{ id: string; secret: string }> {
    const response = await app.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: bearer(owner), payload: { url, events } });
    expect(response.statusCode, response.body).toBe(201);
    return json(response) as { id: string; secret: string };
  }

  async function deliveriesOf(webhookId: string, app = t) {
    const response = await app.app.inject({ method: 'GET', url: `/api/v1/webhooks/${webhookId}/deliveries`, headers: bearer(owner) });
    expect(response.statusCode, response.body).toBe(200);
    return json(response).items as Array<Record<string, any>>;
  }

  async function countRows(table: 'webhookEvents' | 'webhookDeliveries'): Promise<number> {
    const row = await t.database.db.selectFrom(table).select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
    return Number(row.count);
  }

  const verify = (index: number, secret: string, options: { now?: () => Date } = {}) =>
    verifyWebhook(receiver.received[index]!.body, receiver.received[index]!.headers, secret, { toleranceSeconds: 300, now: options.now ?? t.clock.now });

  it('delivers a signed token.created event that the SDK verifies, and refuses it once the body, timestamp or secret is altered', async () => {
    const webhook = await createWebhook(['token.created']);
    const created = await passwordToken(t, { scopes: ['tokens:read'] });

    expect(await t.context.webhooks.runOnce()).toBe(1);
    expect(receiver.received).toHaveLength(1);
    const { headers, body } = receiver.received[0]!;
    const event = verify(0, webhook.secret);
    expect(event).toMatchObject({ type: 'token.created', organizationId: t.organizationId, createdAt: t.clock.now().toISOString() });
    expect(event.data).toMatchObject({ token: { id: created.id, name: created.body.name, hint: created.body.hint, kind: 'personal', owner: { type: 'user', id: t.ownerId } } });
    expect(headers['keyward-event-id']).toBe(event.id);
    expect(headers['keyward-event-type']).toBe('token.created');
    expect(headers['keyward-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    // Never a secret: neither the token's plaintext nor the signing secret travels in the body.
    expect(body).not.toContain(created.token);
    expect(body).not.toContain(webhook.secret);

    const refusal = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return (error as WebhookVerificationError).reason;
      }
      return 'accepted';
    };
    expect(refusal(() => verifyWebhook(body.replace(created.id, 'tok_forged000000000000'), headers, webhook.secret, { now: t.clock.now }))).toBe('signature_mismatch');
    expect(refusal(() => verifyWebhook(body, headers, `${webhook.secret}x`, { now: t.clock.now }))).toBe('signature_mismatch');
    const resigned = String(headers['keyward-signature']).replace(/^t=(\d+)/, (_match, t0: string) => `t=${Number(t0) + 1}`);
    expect(refusal(() => verifyWebhook(body, { ...headers, 'keyward-signature': resigned }, webhook.secret, { now: t.clock.now }))).toBe('signature_mismatch');
    // The same delivery replayed ten minutes later is too old.
    t.clock.advance(10 * 60_000);
    expect(refusal(() => verify(0, webhook.secret))).toBe('timestamp_out_of_tolerance');
  });

  it('reports rotation, revocation and membership changes to the endpoints subscribed to them only', async () => {
    const tokens = await createWebhook(['token.rotated', 'token.revoked']);
    const members = await createWebhook(['member.added', 'member.removed']);
    const created = await passwordToken(t, { scopes: ['tokens:read'] });
    const rotated = await t.app.inject({ method: 'POST', url: `/api/v1/tokens/${created.id}/rotate`, headers: bearer(owner), payload: { gracePeriodSeconds: 60 } });
    expect(rotated.statusCode).toBe(201);
    const revoked = await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${json(rotated).id}`, headers: bearer(owner) });
    expect(revoked.statusCode).toBe(204);
    const memberId = await addMember(t, owner, 'member@example.com', 'member');
    const removed = await t.app.inject({ method: 'DELETE', url: `/api/v1/members/${memberId}`, headers: bearer(owner) });
    expect(removed.statusCode).toBe(204);

    while ((await t.context.webhooks.runOnce()) > 0);
    const byType = (secret: string) =>
      receiver.received.flatMap((_delivery, index) => {
        try {
          return [verify(index, secret)];
        } catch {
          return [];
        }
      });
    // Deliveries are concurrent: receivers get no ordering promise, so order by the change.
    const tokenEvents = byType(tokens.secret).sort((a, b) => (a.type === 'token.rotated' ? -1 : b.type === 'token.rotated' ? 1 : 0));
    expect(tokenEvents.map((event) => event.type)).toEqual(['token.rotated', 'token.revoked']);
    expect(tokenEvents[0]!.data).toMatchObject({ token: { id: created.id }, newToken: { id: json(rotated).id } });
    expect(tokenEvents[1]!.data).toMatchObject({ token: { id: json(rotated).id } });
    const memberEvents = byType(members.secret).sort((a, b) => (a.type === 'member.added' ? -1 : b.type === 'member.added' ? 1 : 0));
    expect(memberEvents.map((event) => event.type)).toEqual(['member.added', 'member.removed']);
    expect(memberEvents[0]!.data).toMatchObject({ member: { userId: memberId, email: 'member@example.com', role: 'member' } });
    expect(receiver.received).toHaveLength(4);
  });

  it('writes the outbox event in the transaction of the change, and nothing for a change that rolls back', async () => {
    await createWebhook(['token.revoked']);
    const kept = await passwordToken(t, { scopes: ['tokens:read'] });
    const doomed = await passwordToken(t, { scopes: ['tokens:read'] });
    expect(await countRows('webhookEvents')).toBe(0);

    // The change, its audit row and its outbox row, then a failure before commit.
    await expect(
      t.context.deps.store.transaction(async (store) => {
        await store.revokeTokens([doomed.id], t.clock.now(), 'revoked');
        await store.insertAuditEvent(auditEvent(t.context.deps, null, { action: 'token.revoked', organizationId: t.organizationId, target: { type: 'token', id: doomed.id } }));
        throw new Error('the process dies before commit');
      }),
    ).rejects.toThrow('the process dies before commit');
    expect(await countRows('webhookEvents')).toBe(0);
    expect(await countRows('webhookDeliveries')).toBe(0);
    expect((await t.context.deps.store.findToken(t.organizationId, doomed.id))?.revokedAt).toBeNull();

    const response = await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${kept.id}`, headers: bearer(owner) });
    expect(response.statusCode).toBe(204);
    expect(await countRows('webhookEvents')).toBe(1);
    expect(await countRows('webhookDeliveries')).toBe(1);
  });

  it('retries a failing receiver with growing delays, and the delivery log shows each attempt', async () => {
    const webhook = await createWebhook(['token.created']);
    await passwordToken(t, { scopes: ['tokens:read'] });
    receiver.answerWith(500, 503);

    expect(await t.context.webhooks.runOnce()).toBe(1);
    let [delivery] = await deliveriesOf(webhook.id);
    expect(delivery).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: 500, lastError: 'answered 500', deliveredAt: null });
    const firstDelayMs = Date.parse(delivery!.nextAttemptAt) - t.clock.now().getTime();
    expect(firstDelayMs).toBeGreaterThan(0);
    // Not due yet: nothing is sent.
    expect(await t.context.webhooks.runOnce()).toBe(0);

    t.clock.advance(firstDelayMs);
    expect(await t.context.webhooks.runOnce()).toBe(1);
    [delivery] = await deliveriesOf(webhook.id);
    expect(delivery).toMatchObject({ status: 'pending', attempts: 2, lastStatusCode: 503 });
    const secondDelayMs = Date.parse(delivery!.nextAttemptAt) - t.clock.now().getTime();
    expect(secondDelayMs).toBeGreaterThanOrEqual(firstDelayMs);

    t.clock.advance(secondDelayMs);
    expect(await t.context.webhooks.runOnce()).toBe(1);
    [delivery] = await deliveriesOf(webhook.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 204, lastError: null, nextAttemptAt: null, deliveredAt: t.clock.now().toISOString() });
    expect(delivery!.lastDurationMs).toEqual(expect.any(Number));
    // At least once, with one stable id: every attempt carried the same event id and body.
    expect(new Set(receiver.received.map((each) => each.headers['keyward-event-id'])).size).toBe(1);
    expect(new Set(receiver.received.map((each) => each.body)).size).toBe(1);
  });

  it('keeps retrying for at least 24 hours, then marks the delivery failed', async () => {
    const webhook = await createWebhook(['token.created']);
    await passwordToken(t, { scopes: ['tokens:read'] });
    const enqueuedAt = t.clock.now().getTime();
    receiver.answerWith(...Array<number>(100).fill(500));
    let delivery: Record<string, any> | undefined;
    for (let round = 0; round < 100; round++) {
      await t.context.webhooks.runOnce();
      [delivery] = await deliveriesOf(webhook.id);
      if (delivery!.status !== 'pending') break;
      t.clock.advance(Date.parse(delivery!.nextAttemptAt) - t.clock.now().getTime());
    }
    expect(delivery).toMatchObject({ status: 'failed', lastStatusCode: 500, nextAttemptAt: null });
    expect(Date.parse(delivery!.lastAttemptAt) - enqueuedAt).toBeGreaterThanOrEqual(RETRY_WINDOW_MS);
    // Backoff, not a busy loop: a day of retries is a couple of dozen attempts.
    expect(delivery!.attempts).toBeGreaterThan(5);
    expect(delivery!.attempts).toBeLessThan(30);
    expect(receiver.received).toHaveLength(delivery!.attempts);
    // Nothing is sent after it failed, however late.
    t.clock.advance(48 * HOUR_MS);
    expect(await t.context.webhooks.runOnce()).toBe(0);
  });

  it('sends a signed ping from the test route, whatever the event filter', async () => {
    const webhook = await createWebhook(['member.added']);
    const response = await t.app.inject({ method: 'POST', url: `/api/v1/webhooks/${webhook.id}/test`, headers: bearer(owner) });
    expect(response.statusCode, response.body).toBe(202);
    const { eventId, deliveryId } = json(response);
    await t.context.webhooks.runOnce();
    expect(verify(0, webhook.secret)).toMatchObject({ id: eventId, type: 'ping', data: { webhookId: webhook.id } });
    const [delivery] = await deliveriesOf(webhook.id);
    expect(delivery).toMatchObject({ id: deliveryId, eventId, eventType: 'ping', status: 'delivered', attempts: 1, lastStatusCode: 204 });
  });

  it('holds deliveries of a disabled endpoint and sends them once it is enabled again', async () => {
    const webhook = await createWebhook(['token.created']);
    await passwordToken(t, { scopes: ['tokens:read'] });
    const patch = (enabled: boolean) => t.app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${webhook.id}`, headers: bearer(owner), payload: { enabled } });
    expect((await patch(false)).statusCode).toBe(200);
    expect(await t.context.webhooks.runOnce()).toBe(0);
    expect((await patch(true)).statusCode).toBe(200);
    expect(await t.context.webhooks.runOnce()).toBe(1);
    expect(receiver.received).toHaveLength(1);
  });

  it('gives up, unsent, on deliveries an endpoint stayed disabled for the whole retry window, and does not send them once it is enabled again', async () => {
    const webhook = await createWebhook(['token.created']);
    const patch = (enabled: boolean) => t.app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${webhook.id}`, headers: bearer(owner), payload: { enabled } });
    await passwordToken(t, { scopes: ['tokens:read'] });
    t.clock.advance(RETRY_WINDOW_MS - 60_000);
    // A day younger: still within its window when the first one's closes.
    await passwordToken(t, { scopes: ['tokens:read'] });
    expect((await patch(false)).statusCode).toBe(200);
    expect(await t.context.webhooks.runOnce()).toBe(0);
    expect((await deliveriesOf(webhook.id)).map((delivery) => delivery.status)).toEqual(['pending', 'pending']);

    t.clock.advance(2 * 60_000);
    expect(await t.context.webhooks.runOnce()).toBe(0);
    const [young, old] = await deliveriesOf(webhook.id);
    expect(old).toMatchObject({ status: 'failed', attempts: 0, lastStatusCode: null, lastError: 'not sent: the endpoint was disabled for the whole retry window', nextAttemptAt: null });
    expect(young).toMatchObject({ status: 'pending', attempts: 0 });

    expect((await patch(true)).statusCode).toBe(200);
    expect(await t.context.webhooks.runOnce()).toBe(1);
    expect(receiver.received).toHaveLength(1);
    expect(JSON.parse(receiver.received[0]!.body).createdAt).toBe(new Date(young!.createdAt).toISOString());
  });

  it('drops the delivery log of a deleted endpoint at once, and keeps the event for the endpoints still owed it', async () => {
    const kept = await createWebhook(['token.created']);
    const deleted = await createWebhook(['token.created']);
    await passwordToken(t, { scopes: ['tokens:read'] });
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${deleted.id}`, headers: bearer(owner) })).statusCode).toBe(204);
    expect(await countRows('webhookDeliveries')).toBe(1);
    expect(await t.context.webhooks.runOnce()).toBe(1);
    expect(verify(0, kept.secret).type).toBe('token.created');
    expect(await countRows('webhookEvents')).toBe(1);
  });

  it('sends each delivery once when two workers poll the same database at the same moment', async () => {
    await createWebhook(['token.created']);
    for (let index = 0; index < 6; index++) await passwordToken(t, { scopes: ['tokens:read'] });
    const worker = () =>
      new WebhookWorker({ store: new WebhookStore(t.database.db, t.database.capabilities.readTimestamp), keyring: t.context.deps.keyring, now: t.clock.now, log: t.app.log, allowPrivate: true, batchSize: 10 });
    const [first, second] = await Promise.all([worker().runOnce(), worker().runOnce()]);
    expect(first + second).toBe(6);
    expect(receiver.received).toHaveLength(6);
    expect(new Set(receiver.received.map((each) => each.headers['keyward-event-id'])).size).toBe(6);
  });

  it('takes over a delivery whose worker died holding it, once the lease runs out', async () => {
    await createWebhook(['token.created']);
    await passwordToken(t, { scopes: ['tokens:read'] });
    const store = new WebhookStore(t.database.db, t.database.capabilities.readTimestamp);
    // A worker claims the delivery and is killed before it sends anything.
    expect(await store.claimDue('worker_crashed', t.clock.now(), new Date(t.clock.now().getTime() + 30_000), 10)).toHaveLength(1);
    expect(await t.context.webhooks.runOnce()).toBe(0);
    t.clock.advance(30_000);
    expect(await t.context.webhooks.runOnce()).toBe(1);
    expect(receiver.received).toHaveLength(1);
  });

  it('polls once started, is woken by the test route, and stops cleanly when the app closes', async () => {
    const webhook = await createWebhook(['token.created']);
    t.context.webhooks.start();
    const response = await t.app.inject({ method: 'POST', url: `/api/v1/webhooks/${webhook.id}/test`, headers: bearer(owner) });
    expect(response.statusCode).toBe(202);
    await expect.poll(() => receiver.received.length, { timeout: 5000 }).toBe(1);
    await t.app.close();
    const [delivery] = await new WebhookStore(t.database.db, t.database.capabilities.readTimestamp).listDeliveries(t.organizationId, webhook.id, { limit: 10 });
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 1 });
  });

  it('delivers a committed event exactly once after the process that committed it went away unsent', async () => {
    const webhook = await createWebhook(['token.created']);
    await passwordToken(t, { scopes: ['tokens:read'] });
    // The first process stops right after the commit: its worker never ran.
    await t.app.close();
    const { app, context } = await buildApp({ config: t.config, database: t.database, keyring: t.context.deps.keyring, now: t.clock.now, logStream: new Writable({ write: (_chunk, _encoding, done) => done() }) });
    try {
      expect(await context.webhooks.runOnce()).toBe(1);
      expect(await context.webhooks.runOnce()).toBe(0);
      expect(verify(0, webhook.secret).type).toBe('token.created');
      expect(receiver.received).toHaveLength(1);
    } finally {
      await app.close();
    }
  });

  describe('with the SSRF guard on (no KEYWARD_WEBHOOK_ALLOW_PRIVATE)', () => {
    let guarded: TestApp;
    beforeEach(async () => {
      guarded = await createTestApp(open);
      owner = await ownerToken(guarded);
    });
    afterEach(async () => {
      await guarded.close();
    });

    it('refuses to deliver to a host name that resolves to loopback (localhost), and says so in the delivery log', async () => {
      const webhook = await createWebhook(['token.created'], `http://localhost:${receiver.port}/hooks`, guarded);
      await passwordToken(guarded, { scopes: ['tokens:read'] });
      expect(await guarded.context.webhooks.runOnce()).toBe(1);
      expect(receiver.received).toHaveLength(0);
      const [delivery] = await deliveriesOf(webhook.id, guarded);
      expect(delivery).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: null });
      expect(delivery!.lastError).toMatch(/^refused: localhost resolves to (127\.0\.0\.1|::1), which is not a public address$/);
    });
  });
});

describe('a sealed webhook secret', () => {
  it('opens under the keyring version it was sealed with, for its own endpoint only', async () => {
    const { openSecret, sealSecret } = await import('./secret-box.ts');
    const old = parseKeyring(newKeyringEntry('v1'));
    const sealed = sealSecret(old, 'whk_1', 'whsec_x');
    expect(openSecret(old, 'whk_1', sealed)).toBe('whsec_x');
    expect(() => openSecret(parseKeyring(newKeyringEntry('v2')), 'whk_1', sealed)).toThrow(/keyring version "v1"/);
    // Bound to its endpoint: moved to another row, it does not open.
    expect(() => openSecret(old, 'whk_2', sealed)).toThrow(/does not open/);
  });
});

describeEachDialect('resealing webhook secrets after a keyring rotation', (open) => {
  it('seals each secret under the current version, so the old one can be dropped, and signs with the same secret as before', async () => {
    const v1 = newKeyringEntry('v1');
    const receiver = await startWebhookReceiver();
    const first = await createTestApp(open, { keyring: parseKeyring(v1), env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' } });
    try {
      const owner = await ownerToken(first);
      const response = await first.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: bearer(owner), payload: { url: receiver.url, events: ['token.created'] } });
      const { id, secret } = json(response) as { id: string; secret: string };
      const store = new WebhookStore(first.database.db, first.database.capabilities.readTimestamp);
      const { resealWebhookSecrets } = await import('./secret-box.ts');
      const rotated = parseKeyring(`${newKeyringEntry('v2')},${v1}`);
      expect(await resealWebhookSecrets(store, rotated)).toBe(1);
      expect(await resealWebhookSecrets(store, rotated)).toBe(0);
      const [sealed] = await store.listSealedSecrets();
      expect(sealed).toMatchObject({ id, secretCiphertext: expect.stringMatching(/^v2:/) });

      // Only v2 left: the worker still signs with the endpoint's secret.
      const onlyV2 = new WebhookWorker({ store, keyring: { current: rotated.all[0]!, all: [rotated.all[0]!] }, now: first.clock.now, log: first.app.log, allowPrivate: true });
      await passwordToken(first, { scopes: ['tokens:read'] });
      expect(await onlyV2.runOnce()).toBe(1);
      expect(verifyWebhook(receiver.received[0]!.body, receiver.received[0]!.headers, secret, { now: first.clock.now }).type).toBe('token.created');
    } finally {
      await first.close();
      await receiver.close();
    }
  });
});
