// POST /api/v1/verify, answered in front of Fastify.
//
// A resource server asks this once for every request it serves, so its cost
// is the product. Fastify's per-request pipeline (routing, the request and
// reply objects, a child logger, the hooks, the content-type machinery, body
// validation, the reply's send path) costs more CPU here than the
// verification itself: measured with the benchmark's load, ~80–130 µs of server
// CPU a request against ~40–70 µs for a bare Fastify route that only parses the
// body (docs/performance.md). This handler answers the common, well-formed
// request directly, with the same parts the Fastify route uses: its body
// schema (compiled once), the same caller authentication (a keyward:verify
// bearer token through the verifier and its cache), the same answer
// (`answerVerify`), the same problem answers (`createProblemAnswerer`), headers,
// request id, metrics and request logs.
//
// Everything else goes to Fastify:
// - untouched (its body unread): other routes and methods, a body that is not
//   `application/json` or has no length or is over the limit, a request without
//   a well-formed bearer token (a console session, or none: Fastify answers),
//   and every request once the server is closing;
// - replayed in-process (`app.inject`, same headers and peer address) when the
//   body turns out to be malformed JSON, outside the schema or with a NUL
//   character or a bad `ip`: such a request is refused before anything is
//   counted, so Fastify's route refuses it, with its own error answers.
// Once the caller's authentication starts (it counts failures and records last
// use), the request is answered here, errors included.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import proxyAddr from '@fastify/proxy-addr';
import { requireScope, type RequestFacts } from '@keyward/core';
import type { Logger } from 'pino';
import secureJson from 'secure-json-parse';
import type { Metrics } from '../metrics/metrics.ts';
import { authenticateBearer } from '../verification/bearer-actor.ts';
import type { AppContext } from './app-types.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import type { createProblemAnswerer } from './problem-answer.ts';
import { answerVerify, checkVerifyBody, checkVerifyBodySchema, JSON_TYPE, type VerifyRequestBody } from './routes/verification-routes.ts';
import { API_HEADERS, requestIdFor } from './security.ts';

export const VERIFY_PATH = '/api/v1/verify';
const VERIFY_SCOPE = 'keyward:verify';
const JSON_CONTENT_TYPE = /^application\/json\s*(?:;\s*charset=utf-8\s*)?$/i;
const BEARER = /^Bearer ([!-~]{1,512})$/i;
const DECIMAL = /^\d{1,9}$/;
/** Fastify's own JSON parser refuses these keys (prototype poisoning); so does this one. */
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;
const HSTS = 'max-age=31536000; includeSubDomains';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface VerifyFastPathOptions {
  context: Pick<AppContext, 'verifier' | 'deps' | 'config'>;
  log: Logger;
  metrics: Pick<Metrics, 'observeRequest'>;
  answerProblem: ReturnType<typeof createProblemAnswerer>;
  isClosing: () => boolean;
  /** Fastify's own request handler: the request goes there untouched. */
  fastify: Handler;
  /** Fastify, in-process, for a request whose body was already read (app.inject). */
  replay: (req: IncomingMessage, body: Buffer) => Promise<{ statusCode: number; headers: Record<string, string | string[] | number | undefined>; rawPayload: Buffer }>;
}

export interface VerifyFastPath {
  handle: Handler;
  /** Requests answered here (not handed to Fastify): for tests and the benchmark. */
  readonly answered: number;
}

export function createVerifyFastPath(options: VerifyFastPathOptions): VerifyFastPath {
  const { context, log, metrics, answerProblem, isClosing } = options;
  const { verifier, deps, config } = context;
  // Fastify's trust function for the same KEYWARD_TRUSTED_PROXIES: the same client address and protocol.
  const trust = config.trustedProxies.length > 0 ? proxyAddr.compile(config.trustedProxies) : null;
  let answered = 0;

  function clientAddress(req: IncomingMessage): string | null {
    if (!trust) return req.socket.remoteAddress ?? null;
    const addresses = proxyAddr.all(req, trust);
    return addresses[addresses.length - 1] ?? null;
  }

  function isHttps(req: IncomingMessage): boolean {
    const forwarded = req.headers['x-forwarded-proto'];
    if (trust && typeof forwarded === 'string' && trust(req.socket.remoteAddress ?? '', 0)) return lastEntry(forwarded) === 'https';
    return (req.socket as { encrypted?: boolean }).encrypted === true;
  }

  /** The bearer token, when the request is one this handler can answer from its headers alone. */
  function eligible(req: IncomingMessage): string | null {
    if (req.method !== 'POST' || req.url !== VERIFY_PATH || isClosing()) return null;
    const { headers } = req;
    const type = headers['content-type'];
    const length = headers['content-length'];
    if (type === undefined || !JSON_CONTENT_TYPE.test(type) || length === undefined || !DECIMAL.test(length) || headers['transfer-encoding'] !== undefined) return null;
    const bytes = Number(length);
    if (bytes < 1 || bytes > config.bodyLimitBytes) return null;
    const authorization = headers.authorization;
    return authorization === undefined ? null : (BEARER.exec(authorization.trim())?.[1] ?? null);
  }

  async function replay(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const answer = await options.replay(req, body);
    const headers: Record<string, string | string[] | number> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      // Connection management is this socket's own.
      if (value !== undefined && name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') headers[name] = value;
    }
    if (isClosing()) headers.connection = 'close';
    res.writeHead(answer.statusCode, headers);
    res.end(answer.rawPayload);
  }

  async function answer(req: IncomingMessage, res: ServerResponse, token: string, raw: Buffer, started: number): Promise<void> {
    let body: VerifyRequestBody;
    try {
      const parsed: unknown = secureJson.parse(raw, undefined, PARSE_OPTIONS);
      if (!checkVerifyBodySchema.Check(parsed)) throw new Error('outside the schema');
      body = parsed;
      checkVerifyBody(body);
    } catch {
      // Refused before anything was counted: the Fastify route says why, as it would have.
      return replay(req, res, raw);
    }
    answered++;
    const requestId = requestIdFor(req);
    // Fastify's request logger: a child carrying the request id, made only when something is logged.
    let child: Logger | null = null;
    const requestLog = () => (child ??= log.child({ reqId: requestId }));
    const logsRequests = log.isLevelEnabled('info');
    const ip = clientAddress(req);
    if (logsRequests) {
      requestLog().info({ req: { method: 'POST', url: VERIFY_PATH, host: req.headers.host, remoteAddress: ip, remotePort: req.socket.remotePort } }, 'incoming request');
    }
    const userAgent = req.headers['user-agent'];
    const facts: RequestFacts = { ip, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : null, requestId };
    let status = 200;
    let type = JSON_TYPE;
    let text: string;
    let extra: Record<string, string> | null = null;
    try {
      const caller = await authenticateBearer(verifier, deps, token, facts);
      requireScope(caller, VERIFY_SCOPE);
      text = await answerVerify(verifier, body, caller.organizationId, facts);
    } catch (error) {
      const problem = answerProblem(error, { log: requestLog(), usedAuthorization: true, path: VERIFY_PATH });
      status = problem.problem.status;
      type = PROBLEM_CONTENT_TYPE;
      text = JSON.stringify(problem.problem);
      extra = problem.headers;
    }
    const headers: Record<string, string | number> = { ...API_HEADERS, 'x-request-id': requestId, 'content-type': type, 'content-length': Buffer.byteLength(text) };
    if (isHttps(req)) headers['strict-transport-security'] = HSTS;
    if (extra) Object.assign(headers, extra);
    if (isClosing()) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(text);
    const seconds = (performance.now() - started) / 1000;
    metrics.observeRequest('POST', VERIFY_PATH, status, seconds);
    if (logsRequests) requestLog().info({ res: { statusCode: status }, responseTime: seconds * 1000 }, 'request completed');
  }

  return {
    get answered() {
      return answered;
    },
    handle(req, res) {
      const token = eligible(req);
      if (token === null) return options.fastify(req, res);
      const started = performance.now();
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        answer(req, res, token, raw, started).catch((error: unknown) => {
          // Only a bug or a failed replay gets here (every expected failure is answered above): never a hanging client.
          if (res.headersSent) return res.destroy();
          const problem = answerProblem(error, { log, usedAuthorization: true, path: VERIFY_PATH });
          res.writeHead(problem.problem.status, { ...API_HEADERS, ...problem.headers, 'content-type': PROBLEM_CONTENT_TYPE });
          res.end(JSON.stringify(problem.problem));
        });
      });
      // A client that went away mid-body has no one to answer.
      req.on('error', () => res.destroy());
    },
  };
}

function lastEntry(value: string): string {
  const comma = value.lastIndexOf(',');
  return (comma === -1 ? value : value.slice(comma + 1)).trim();
}
