// One delivery attempt over HTTP(S): a POST through the SSRF guard, with a
// deadline, no redirects and no connection reuse, answering what happened
// rather than throwing.
import http from 'node:http';
import https from 'node:https';
import { guardedLookup, isPublicAddress, literalAddress, urlProblem, WebhookTargetError } from './ssrf-guard.ts';

export interface AttemptOutcome {
  /** The receiver's status code; null when no answer came (refused target, network error, timeout). */
  statusCode: number | null;
  /** Why the attempt did not succeed, for the delivery log; null on a 2xx. Never a secret. */
  error: string | null;
  durationMs: number;
}

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

const USER_AGENT = 'Keyward-Webhooks/1';

function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof WebhookTargetError) return error.message;
  const { name, code, message } = error as NodeJS.ErrnoException;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  // Node's messages name the host and port at most; never the body or its signature.
  return code ? `${code}: ${message}` : message;
}

/** POSTs `body` to `url`; a 2xx within the deadline acknowledges it, anything else is a failure. */
export async function sendWebhook(url: string, body: string, headers: Record<string, string>, options: SendOptions): Promise<AttemptOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const problem = urlProblem(url, options.allowPrivate);
  if (problem) return { statusCode: null, error: `refused: the URL ${problem}`, durationMs: 0 };
  const target = new URL(url);
  // Node connects to a literal address without calling lookup, so it is checked here.
  const literal = literalAddress(target);
  if (literal !== null && !options.allowPrivate && !isPublicAddress(literal)) return { statusCode: null, error: `refused: ${literal} is not a public address`, durationMs: 0 };
  const client = target.protocol === 'https:' ? https : http;
  try {
    const statusCode = await new Promise<number>((resolve, reject) => {
      const request = client.request(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': USER_AGENT, ...headers },
        lookup: guardedLookup(options.allowPrivate),
        // A fresh connection each time: every delivery passes through the lookup guard.
        agent: false,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      request.on('response', (response) => {
        // The status is the answer; the body is read and dropped so the socket can close.
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.end(body);
    });
    if (statusCode >= 200 && statusCode < 300) return { statusCode, error: null, durationMs: elapsed() };
    const error = statusCode >= 300 && statusCode < 400 ? `answered ${statusCode}: redirects are not followed; point the endpoint at the final URL` : `answered ${statusCode}`;
    return { statusCode, error, durationMs: elapsed() };
  } catch (error) {
    return { statusCode: null, error: describeFailure(error, options.timeoutMs), durationMs: elapsed() };
  }
}
