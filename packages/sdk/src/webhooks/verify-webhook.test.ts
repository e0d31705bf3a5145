import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyWebhook, WebhookVerificationError, type WebhookRefusal } from './verify-webhook.ts';

const SECRET = 'whsec_test-secret-0123456789abcdefghijklmnopqrstu';
const NOW = new Date('2026-03-01T12:00:00.000Z');
const now = () => NOW;
const T = Math.floor(NOW.getTime() / 1000);
const BODY = JSON.stringify({ id: 'wev_1', type: 'token.revoked', createdAt: NOW.toISOString(), organizationId: 'org_1', data: { token: { id: 'tok_1' } } });

function sign(body: string, timestamp = T, secret = SECRET): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

function headers(signature: string, eventId = 'wev_1'): Record<string, string> {
  return { 'keyward-signature': signature, 'keyward-event-id': eventId, 'keyward-event-type': 'token.revoked' };
}

function refusal(run: () => unknown): WebhookRefusal | 'accepted' {
  try {
    run();
    return 'accepted';
  } catch (error) {
    if (error instanceof WebhookVerificationError) return error.reason;
    throw error;
  }
}

describe('verifyWebhook', () => {
  it('answers the parsed event for a body signed with the secret', () => {
    expect(verifyWebhook(BODY, headers(`t=${T},v1=${sign(BODY)}`), SECRET, { now })).toMatchObject({ id: 'wev_1', type: 'token.revoked', data: { token: { id: 'tok_1' } } });
  });

  it('takes the body as bytes and the headers as a fetch Headers object, whatever their case', () => {
    const fetchHeaders = new Headers({ 'Keyward-Signature': `t=${T},v1=${sign(BODY)}`, 'Keyward-Event-Id': 'wev_1' });
    expect(verifyWebhook(new TextEncoder().encode(BODY), fetchHeaders, SECRET, { now }).id).toBe('wev_1');
    expect(verifyWebhook(Buffer.from(BODY), { 'KEYWARD-SIGNATURE': `t=${T},v1=${sign(BODY)}` }, SECRET, { now }).id).toBe('wev_1');
  });

  it('accepts any one of several v1 signatures, and skips schemes it does not know', () => {
    const signature = `t=${T},v1=${sign(BODY, T, 'whsec_old')},v2=abc,v1=${sign(BODY)}`;
    expect(refusal(() => verifyWebhook(BODY, headers(signature), SECRET, { now }))).toBe('accepted');
  });

  it('accepts a list of secrets, for replacing an endpoint without dropping deliveries', () => {
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${T},v1=${sign(BODY)}`), ['whsec_new', SECRET], { now }))).toBe('accepted');
  });

  it('refuses a forged signature, an altered body, another secret and a moved timestamp', () => {
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${T},v1=${'0'.repeat(64)}`), SECRET, { now }))).toBe('signature_mismatch');
    expect(refusal(() => verifyWebhook(BODY.replace('tok_1', 'tok_2'), headers(`t=${T},v1=${sign(BODY)}`), SECRET, { now }))).toBe('signature_mismatch');
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${T},v1=${sign(BODY)}`), `${SECRET}x`, { now }))).toBe('signature_mismatch');
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${T - 1},v1=${sign(BODY)}`), SECRET, { now }))).toBe('signature_mismatch');
  });

  it('refuses a replay older than the tolerance, and a timestamp too far ahead', () => {
    const old = T - 301;
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${old},v1=${sign(BODY, old)}`), SECRET, { now }))).toBe('timestamp_out_of_tolerance');
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${old},v1=${sign(BODY, old)}`), SECRET, { now, toleranceSeconds: 600 }))).toBe('accepted');
    const ahead = T + 301;
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${ahead},v1=${sign(BODY, ahead)}`), SECRET, { now }))).toBe('timestamp_out_of_tolerance');
  });

  it('refuses a missing or malformed signature header', () => {
    expect(refusal(() => verifyWebhook(BODY, {}, SECRET, { now }))).toBe('missing_signature');
    expect(refusal(() => verifyWebhook(BODY, headers(`v1=${sign(BODY)}`), SECRET, { now }))).toBe('malformed_signature');
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${T},t=${T},v1=${sign(BODY)}`), SECRET, { now }))).toBe('malformed_signature');
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${T},v1=xyz`), SECRET, { now }))).toBe('malformed_signature');
  });

  it('refuses a body whose id is not the Keyward-Event-Id header', () => {
    expect(refusal(() => verifyWebhook(BODY, headers(`t=${T},v1=${sign(BODY)}`, 'wev_other'), SECRET, { now }))).toBe('malformed_body');
  });

  it('asks for the raw body rather than a parsed object', () => {
    expect(() => verifyWebhook(JSON.parse(BODY) as string, headers(`t=${T},v1=${sign(BODY)}`), SECRET, { now })).toThrow(TypeError);
    expect(() => verifyWebhook(BODY, headers(`t=${T},v1=${sign(BODY)}`), '', { now })).toThrow(TypeError);
  });
});
