// The Keyward-Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
// The timestamp is signed with the body, so a captured delivery cannot be
// replayed later with a fresh timestamp; receivers reject old ones. Keyward
// signs its webhook deliveries this way, and secret-scanning partners sign
// their leak reports this way too (http/routes/secret-scanning-routes.ts).
import { createHmac, timingSafeEqual } from 'node:crypto';

function hmac(secret: string, timestamp: number, rawBody: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(rawBody).digest();
}

export function signatureHeader(secret: string, rawBody: string, at: Date): string {
  const timestamp = Math.floor(at.getTime() / 1000);
  return `t=${timestamp},v1=${hmac(secret, timestamp, rawBody).toString('hex')}`;
}

/** At most this many v1 values are compared, so a header cannot buy unbounded work. */
const MAX_SIGNATURES = 4;

/**
 * Whether `header` signs `rawBody` under one of `secrets` at a timestamp within
 * `toleranceSeconds` of `now`. Every secret is compared with every v1 value in
 * constant time, whichever matches first, so timing does not tell which came close.
 */
export function signatureMatches(header: string, rawBody: string | Buffer, secrets: readonly string[], now: Date, toleranceSeconds: number): boolean {
  const timestamps = new Set<string>();
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const [key, value = ''] = part.trim().split('=', 2);
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamps.add(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value) && signatures.length < MAX_SIGNATURES) signatures.push(Buffer.from(value, 'hex'));
  }
  const [timestamp] = timestamps;
  if (timestamps.size !== 1 || timestamp === undefined || signatures.length === 0) return false;
  const isFresh = Math.abs(Math.floor(now.getTime() / 1000) - Number(timestamp)) <= toleranceSeconds;
  let matches = false;
  for (const secret of secrets) {
    const expected = hmac(secret, Number(timestamp), rawBody);
    for (const candidate of signatures) matches = timingSafeEqual(expected, candidate) || matches;
  }
  return matches && isFresh;
}
