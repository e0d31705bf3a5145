import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../../sdk/src/webhooks/verify-webhook.ts';
import { describeEachDialect } from '../storage/test-databases.ts';
import { bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.ts';
import { dueWarning, ExpiryWarningJob } from './expiry-warnings.ts';

const DAY_MS = 86_400_000;
const at = (days: number) => new Date(Date.UTC(2026, 0, 1) + days * DAY_MS);

describe('dueWarning', () => {
  const none = new Set<number>();
  it('answers the threshold just reached', () => {
    expect(dueWarning(at(0), at(90), at(30), none)).toEqual({ thresholdDays: 60, covers: [60] });
    expect(dueWarning(at(0), at(90), at(29), none)).toBeNull();
    expect(dueWarning(at(0), at(90), at(89), new Set([60, 30, 7]))).toEqual({ thresholdDays: 1, covers: [1] });
  });

  it('sends one warning, the tightest, for thresholds passed while the job was not running', () => {
    expect(dueWarning(at(0), at(90), at(85), new Set([60]))).toEqual({ thresholdDays: 7, covers: [30, 7] });
  });

  it('skips thresholds a token never lived through', () => {
    // Made to last 5 days: no 7-day warning at birth, a 1-day warning later.
    expect(dueWarning(at(0), at(5), at(0), none)).toBeNull();
    expect(dueWarning(at(0), at(5), at(4), none)).toEqual({ thresholdDays: 1, covers: [1] });
  });

  it('answers nothing once the tightest threshold reached was sent', () => {
    expect(dueWarning(at(0), at(90), at(31), new Set([60]))).toBeNull();
  });
});

describeEachDialect('the expiry-warning job', (open) => {
  let t: TestApp;
  let owner: string;
  let receiver: WebhookReceiver;
  let secret: string;

  beforeEach(async () => {
    seen = 0;
    receiver = await startWebhookReceiver();
    t = await createTestApp(open, { env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true' } });
    owner = await ownerToken(t, { expiresInDays: 365 });
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: bearer(owner), payload: { url: receiver.url, events: ['token.expiring'] } });
    secret = json(response).secret;
  });
  afterEach(async () => {
    await t.close();
    await receiver.close();
  });

  const job = () => new ExpiryWarningJob({ db: t.database.db, read: t.database.capabilities.readTimestamp, now: t.clock.now, log: t.app.log });

  let seen = 0;
  /** The warnings delivered since the last call, verified as a receiver would on arrival. */
  async function deliveredWarnings(): Promise<Array<{ tokenId: string; thresholdDays: number }>> {
    while ((await t.context.webhooks.runOnce()) > 0);
    const fresh = receiver.received.slice(seen);
    seen = receiver.received.length;
    return fresh.map((delivery) => {
      const event = verifyWebhook<{ token: { id: string }; thresholdDays: number }>(delivery.body, delivery.headers, secret, { now: t.clock.now });
      expect(event.type).toBe('token.expiring');
      return { tokenId: event.data.token.id, thresholdDays: event.data.thresholdDays };
    });
  }

  it('warns at each threshold a token reaches, once, however often it runs', async () => {
    const long = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 90 });
    const short = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 3 });
    expect(await t.context.expiryWarnings.runOnce()).toBe(0);

    t.clock.advance(2.5 * DAY_MS);
    expect(await t.context.expiryWarnings.runOnce()).toBe(1);
    expect(await t.context.expiryWarnings.runOnce()).toBe(0);
    expect(await deliveredWarnings()).toEqual([{ tokenId: short.id, thresholdDays: 1 }]);

    t.clock.advance(28 * DAY_MS);
    expect(await t.context.expiryWarnings.runOnce()).toBe(1);
    expect(await t.context.expiryWarnings.runOnce()).toBe(0);
    expect(await deliveredWarnings()).toEqual([{ tokenId: long.id, thresholdDays: 60 }]);
    expect(receiver.received).toHaveLength(2);
  });

  it('does not warn about revoked tokens', async () => {
    const token = await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 3 });
    await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${token.id}`, headers: bearer(owner) });
    t.clock.advance(2.5 * DAY_MS);
    expect(await t.context.expiryWarnings.runOnce()).toBe(0);
  });

  it('runs on one replica at a time, and another takes over when its lease runs out', async () => {
    await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 3 });
    await passwordToken(t, { scopes: ['tokens:read'], expiresInDays: 4 });
    const [first, second] = [job(), job()];
    t.clock.advance(2.5 * DAY_MS);
    const counts = await Promise.all([first.runOnce(), second.runOnce()]);
    expect([...counts].sort()).toEqual([0, 1]);
    // The holder keeps the job; the other waits for the lease to run out.
    const holder = counts[0] === 1 ? first : second;
    const other = holder === first ? second : first;
    expect(await other.runOnce()).toBe(0);
    t.clock.advance(1 * DAY_MS);
    expect(await other.runOnce()).toBe(1);
    expect(await holder.runOnce()).toBe(0);
    expect(await deliveredWarnings()).toHaveLength(2);
  });
});
