// Verifies a Keyward webhook delivery: the Keyward-Signature header must hold
// an HMAC-SHA256 of "<t>.<raw body>" under the endpoint's secret, for a
// timestamp t within the tolerance of now. The timestamp is inside the
// signature, so an old delivery cannot be replayed with a new one.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The delivered body. */
export interface KeywardWebhookEvent<Data = Record<string, unknown>> {
  /** Stable across retries: de-duplicate by it (delivery is at least once). */
  id: string;
  type: string;
  createdAt: string;
  organizationId: string;
  data: Data;
}

export interface VerifyWebhookOptions {
  /** How far the signed timestamp may be from now, either way. Default 300 (five minutes). */
  toleranceSeconds?: number;
  /** The clock; tests pass their own. */
  now?: () => Date;
}

/** Why a delivery was refused. */
export type WebhookRefusal = 'missing_signature' | 'malformed_signature' | 'timestamp_out_of_tolerance' | 'signature_mismatch' | 'malformed_body';

/** The delivery is not authentic (or not fresh): answer it 400 and do not act on it. */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  readonly reason: WebhookRefusal;
  constructor(reason: WebhookRefusal, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Node's `req.headers`, a fetch `Headers`, or a plain object. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

const DEFAULT_TOLERANCE_SECONDS = 300;
const HEX_SHA256 = /^[0-9a-f]{64}$/;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(',') : value;
  }
  return undefined;
}

function parseSignature(value: string): { timestamp: number; signatures: Buffer[] } {
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of value.split(',')) {
    const equals = part.indexOf('=');
    const key = part.slice(0, equals).trim();
    const entry = part.slice(equals + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(entry)) throw new WebhookVerificationError('malformed_signature', 'Keyward-Signature must carry exactly one t=<unix seconds>.');
      timestamp = Number(entry);
    } else if (key === 'v1' && HEX_SHA256.test(entry)) {
      signatures.push(Buffer.from(entry, 'hex'));
    }
    // Other schemes (a future v2) are skipped, so receivers keep working when one is added.
  }
  if (timestamp === undefined || signatures.length === 0) throw new WebhookVerificationError('malformed_signature', 'Keyward-Signature must look like t=<unix seconds>,v1=<hex>.');
  return { timestamp, signatures };
}

/**
 * Checks a delivery and answers its parsed body, or throws
 * WebhookVerificationError. Pass the raw body exactly as received (a string
 * or bytes): a body parsed and serialized again no longer matches.
 * `secret` may be a list, to accept the old and the new secret while you
 * replace an endpoint.
 *
 * @example
 * app.post('/keyward-events', express.raw({ type: 'application/json' }), (req, res) => {
 *   const event = verifyWebhook(req.body, req.headers, process.env.KEYWARD_WEBHOOK_SECRET!);
 *   if (!alreadySeen(event.id)) handle(event);
 *   res.sendStatus(204);
 * });
 */
export function verifyWebhook<Data = Record<string, unknown>>(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string | readonly string[],
  options: VerifyWebhookOptions = {},
): KeywardWebhookEvent<Data> {
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) throw new TypeError('verifyWebhook needs the raw request body (a string or bytes), not a parsed object');
  const secrets = typeof secret === 'string' ? [secret] : [...secret];
  if (secrets.length === 0 || secrets.some((each) => typeof each !== 'string' || each === '')) throw new TypeError('verifyWebhook needs the endpoint signing secret');
  const signatureValue = header(headers, 'keyward-signature');
  if (!signatureValue) throw new WebhookVerificationError('missing_signature', 'The request has no Keyward-Signature header.');
  const { timestamp, signatures } = parseSignature(signatureValue);
  const toleranceSeconds = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now?.() ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) {
    throw new WebhookVerificationError('timestamp_out_of_tolerance', `The signature's timestamp is more than ${toleranceSeconds} s from now: an old (replayed) delivery, or a clock far off.`);
  }
  const raw = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const signed = Buffer.concat([Buffer.from(`${timestamp}.`, 'utf8'), raw]);
  let matches = false;
  for (const key of secrets) {
    const expected = createHmac('sha256', key).update(signed).digest();
    // Every candidate is compared, in constant time, so timing says nothing about which came close.
    for (const candidate of signatures) matches = timingSafeEqual(expected, candidate) || matches;
  }
  if (!matches) throw new WebhookVerificationError('signature_mismatch', 'No v1 signature matches: the body, timestamp or secret differs from what Keyward signed.');
  let event: KeywardWebhookEvent<Data>;
  try {
    event = JSON.parse(raw.toString('utf8')) as KeywardWebhookEvent<Data>;
  } catch {
    throw new WebhookVerificationError('malformed_body', 'The signed body is not JSON.');
  }
  const eventId = header(headers, 'keyward-event-id');
  if (typeof event?.id !== 'string' || (eventId !== undefined && eventId !== event.id)) throw new WebhookVerificationError('malformed_body', 'The body id does not match Keyward-Event-Id.');
  return event;
}
