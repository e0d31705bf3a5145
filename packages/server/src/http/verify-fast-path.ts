// POST /api/v1/verify and GET /api/v1/authz, answered in front of Fastify.
//
// A resource server (or a gateway) asks one of these for every request it
// serves, so their cost is the product. Fastify's per-request pipeline
// (routing, the request and reply objects, a child logger, the hooks, the
// content-type machinery, validation, the reply's send path) costs more CPU
// here than the verification itself: with the benchmark's load, ~80–130 µs of
// server CPU a request against ~40–70 µs for a bare Fastify route that only
// parses the body (docs/performance.md). This handler answers the common,
// well-formed request directly, with the same parts the Fastify routes use:
// their schemas (compiled once), the same caller authentication (a
// keyward:verify bearer token through the verifier and its cache), the same
// answers (`answerVerify`, `answerAuthz`), the same problem answers
// (`createProblemAnswerer`), headers, request id, metrics and request logs.
//
// Everything else goes to Fastify:
// - untouched: other routes and methods, a /verify body that is not
//   `application/json` or has no length or is over the limit, a request
//   without a well-formed bearer token (a console session, or none: the route
//   answers), a forward-auth query the route would refuse, and every request
//   once the server is closing;
// - replayed in-process (`app.inject`, same headers and peer address) when a
//   /verify body turns out to be malformed JSON, outside the schema or with a
//   NUL character or a bad `ip`: such a request is refused before anything is
//   counted, so the route refuses it, with its own error answers.
// Once a token is being judged (which counts failures, usage and last use),
// the request is answered here, errors included.
//
// The requests it answers are judged and answered at the end of the event
// loop's turn that read them, together with the others read in that turn
// (TurnBatch): under load up to a third less CPU a request, depending on the
// machine's caches, for a wait of at most one turn. A token found in the cache
// is answered without a promise in between (Verifier.verifyNow): less for the
// garbage collector on every request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import proxyAddr from '@fastify/proxy-addr';
import { requireScope, type RequestFacts } from '@keyward/core';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.ts';
import { authenticateBearerToken, authenticateStandingBearer, type BearerActor } from '../verification/bearer-actor.ts';
import type { AppContext } from './app-types.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import type { createProblemAnswerer } from './problem-answer.ts';
import {
  answerAuthz,
  answerVerify,
  authzQuestion,
  checkAuthzQuerySchema,
  checkVerifyBody,
  checkVerifyBodySchema,
  JSON_TYPE,
  VERIFY_SCOPE,
  type AuthzQuestion,
  type VerifyRequestBody,
} from './routes/verification-routes.ts';
import { bearerOf } from './authenticate.ts';
import { ConnectionCallers } from './connection-callers.ts';
import { API_HEADERS, requestIdFor } from './security.ts';
import { TurnBatch } from './turn-batch.ts';

export const VERIFY_PATH = '/api/v1/verify';
export const AUTHZ_PATH = '/api/v1/authz';
/** What nearly every client sends, checked before the pattern. */
const JSON_TYPE_ONLY = 'application/json';
const JSON_CONTENT_TYPE = /^application\/json\s*(?:;\s*charset=utf-8\s*)?$/i;
const DECIMAL = /^\d{1,9}$/;
const HSTS = 'max-age=31536000; includeSubDomains';
/**
 * API_HEADERS as one list of names and values, the form Node's writeHead also
 * takes: an answer's headers are built by copying it and appending, with no
 * object spread and no listing of an object's keys.
 */
const API_HEADER_LIST: readonly string[] = Object.entries(API_HEADERS).flat();
/** Longer forward-auth URLs are parsed on every request rather than kept. */
const MAX_REMEMBERED_URL = 1024;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type Route = typeof VERIFY_PATH | typeof AUTHZ_PATH;
/** What a fast-path route answers with: the 200's JSON (with its length in bytes, when known) or headers. */
type Answer = { json?: string; contentLength?: string; headers?: Readonly<Record<string, string>> };

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
  // Parsed forward-auth questions by URL: a gateway route asks the same one on every request.
  const questions = new LRUCache<string, AuthzQuestion>({ max: 1000 });
  // The caller's token of each keep-alive connection, checksummed and keyed once.
  const callers = new ConnectionCallers();
  // Requests read in one turn of the event loop are answered together at its end.
  const batch = new TurnBatch();

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

  /** The caller's bearer token, when a /verify request is one this handler can answer, judging by its headers. */
  function verifyEligible(req: IncomingMessage): string | null {
    const { headers } = req;
    const type = headers['content-type'];
    const length = headers['content-length'];
    if (type === undefined || (type !== JSON_TYPE_ONLY && !JSON_CONTENT_TYPE.test(type)) || length === undefined || !DECIMAL.test(length) || headers['transfer-encoding'] !== undefined) return null;
    const bytes = Number(length);
    if (bytes < 1 || bytes > config.bodyLimitBytes) return null;
    return bearerOf(headers.authorization);
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

  /** A verify body parsed and checked, or null when the route must say what is wrong with it. */
  function verifyBodyOf(raw: Buffer): VerifyRequestBody | null {
    try {
      // Plain JSON.parse: secure-json-parse's two scans of the text for
      // "__proto__" and "constructor" keys cost a quarter of the parse, and
      // guard nothing here. To JSON.parse such a key is an own property, never
      // the prototype, and the schema admits no key but its own six and no
      // object below them, so the body fails the check and goes to the route,
      // whose parser refuses it as before (verify-fast-path.test.ts sends both).
      const parsed: unknown = JSON.parse(raw.toString());
      if (!checkVerifyBodySchema.Check(parsed)) return null;
      checkVerifyBody(parsed);
      return parsed;
    } catch {
      return null;
    }
  }

  /** A forward-auth request's question, or null when its query is one for the route to refuse. */
  function authzQuestionOf(url: string): AuthzQuestion | null {
    const known = questions.get(url);
    if (known) return known;
    const question = parseAuthzQuestion(url);
    if (question && url.length <= MAX_REMEMBERED_URL) questions.set(url, question);
    return question;
  }

  function parseAuthzQuestion(url: string): AuthzQuestion | null {
    const values: Record<string, string> = {};
    const query = url.indexOf('?');
    if (query !== -1) {
      for (const [key, value] of new URLSearchParams(url.slice(query + 1))) {
        // A repeated parameter is an array to Fastify, which the schema refuses.
        if (Object.hasOwn(values, key)) return null;
        values[key] = value;
      }
    }
    if (!checkAuthzQuerySchema.Check(values)) return null;
    try {
      return authzQuestion(values);
    } catch {
      return null;
    }
  }

  /**
   * Answers as the Fastify route would, from the moment anything may be counted:
   * `work` returns the 200's body (JSON) or headers, or throws the refusal. When
   * `work` answers at once (a cache hit), so does this: no promise, no microtask,
   * less for the garbage collector on every request. Returns a promise only
   * when `work` did.
   */
  function respond(req: IncomingMessage, res: ServerResponse, route: Route, started: number, work: (facts: RequestFacts) => Answer | Promise<Answer>): void | Promise<void> {
    answered++;
    const exchange = new Exchange(req, res, route, started, requestIdFor(req), log.isLevelEnabled('info'));
    const ip = clientAddress(req);
    if (exchange.logsRequests) exchange.log().info({ req: { method: exchange.method, url: req.url, host: req.headers.host, remoteAddress: ip, remotePort: req.socket.remotePort } }, 'incoming request');
    const userAgent = req.headers['user-agent'];
    const facts: RequestFacts = { ip, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : null, requestId: exchange.requestId };
    let done: Answer | Promise<Answer>;
    try {
      done = work(facts);
    } catch (error) {
      return refuse(exchange, error);
    }
    if (done instanceof Promise) return done.then((answer) => send(exchange, answer), (error: unknown) => refuse(exchange, error));
    send(exchange, done);
  }

  function send(exchange: Exchange, answer: Answer): void {
    // The answer's own headers (forward-auth's) are none of API_HEADERS.
    if (answer.json === undefined) write(exchange, 200, answer.headers, null, '', undefined);
    else write(exchange, 200, answer.headers, JSON_TYPE, answer.json, answer.contentLength);
  }

  function refuse(exchange: Exchange, error: unknown): void {
    const problem = answerProblem(error, { log: exchange.log(), usedAuthorization: true, path: exchange.route });
    write(exchange, problem.problem.status, problem.headers, PROBLEM_CONTENT_TYPE, JSON.stringify(problem.problem), undefined);
  }

  /** Writes the answer; `contentLength` is its length in bytes when the work knew it already. */
  function write(exchange: Exchange, status: number, own: Readonly<Record<string, string>> | undefined, type: string | null, text: string, contentLength: string | undefined): void {
    const { req, res } = exchange;
    const headers = [...API_HEADER_LIST, 'x-request-id', exchange.requestId];
    if (own) for (const name in own) headers.push(name, own[name]!);
    if (type !== null) headers.push('content-type', type);
    headers.push('content-length', contentLength ?? String(Buffer.byteLength(text)));
    if (isHttps(req)) headers.push('strict-transport-security', HSTS);
    if (isClosing()) headers.push('connection', 'close');
    res.writeHead(status, headers);
    res.end(text);
    const seconds = (performance.now() - exchange.started) / 1000;
    metrics.observeRequest(exchange.method, exchange.route, status, seconds);
    if (exchange.logsRequests) exchange.log().info({ res: { statusCode: status }, responseTime: seconds * 1000 }, 'request completed');
  }

  /** One request being answered: what its answer and its log lines need. */
  class Exchange {
    readonly req: IncomingMessage;
    readonly res: ServerResponse;
    readonly route: Route;
    readonly method: 'POST' | 'GET';
    readonly started: number;
    readonly requestId: string;
    readonly logsRequests: boolean;
    // Fastify's request logger: a child carrying the request id, made only when something is logged.
    private child: Logger | null = null;

    constructor(req: IncomingMessage, res: ServerResponse, route: Route, started: number, requestId: string, logsRequests: boolean) {
      this.req = req;
      this.res = res;
      this.route = route;
      this.method = route === VERIFY_PATH ? 'POST' : 'GET';
      this.started = started;
      this.requestId = requestId;
      this.logsRequests = logsRequests;
    }

    log(): Logger {
      return (this.child ??= log.child({ reqId: this.requestId }));
    }
  }

  function failed(res: ServerResponse, route: string) {
    return (error: unknown) => {
      // Only a bug or a failed replay gets here (every expected failure is answered above): never a hanging client.
      if (res.headersSent) return res.destroy();
      const problem = answerProblem(error, { log, usedAuthorization: true, path: route });
      res.writeHead(problem.problem.status, { ...API_HEADERS, ...problem.headers, 'content-type': PROBLEM_CONTENT_TYPE });
      res.end(JSON.stringify(problem.problem));
    };
  }

  /**
   * The /verify caller. A connection's first request verifies its bearer token
   * in full and keeps it (ConnectionCallers); the next verifies it by its kept
   * cache key and asks what that verification can stand for; later ones stand on
   * it while nothing it was judged on changed (Verifier.reaffirm), and verify
   * again, in full but for the checksum and the hash, as soon as anything did.
   */
  function callerOf(connection: Socket, token: string, facts: RequestFacts): BearerActor | Promise<BearerActor> {
    const known = callers.recall(connection, token);
    if (known === undefined) {
      return authenticateBearerToken(verifier, deps, token, facts).then((actor) => {
        callers.remember(connection, token);
        return actor;
      });
    }
    const { standing } = known;
    if (standing !== undefined && verifier.reaffirm(standing.verification, facts.ip)) return standing.actor;
    known.standing = undefined;
    return authenticateStandingBearer(verifier, deps, token, facts, known.key).then(({ actor, standing: verification }) => {
      if (verification !== undefined) known.standing = { verification, actor };
      return actor;
    });
  }

  /** The answer's JSON with its Content-Length, for a caller that may verify. */
  function answerFor(caller: BearerActor, body: VerifyRequestBody, facts: RequestFacts): Answer | Promise<Answer> {
    requireScope(caller, VERIFY_SCOPE);
    return answerVerify(verifier, body, caller.organizationId, facts);
  }

  function handleVerify(req: IncomingMessage, res: ServerResponse, token: string): void {
    const started = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const fail = failed(res, VERIFY_PATH);
      // Parsed, verified and answered with the other requests of this turn (TurnBatch).
      batch.add(() => {
        const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        const body = verifyBodyOf(raw);
        // Refused before anything was counted: the Fastify route says why, as it would have.
        const answering = body === null
          ? replay(req, res, raw)
          : respond(req, res, VERIFY_PATH, started, (facts) => {
              const pending = callerOf(req.socket, token, facts);
              return pending instanceof Promise ? pending.then((caller) => answerFor(caller, body, facts)) : answerFor(pending, body, facts);
            });
        answering?.catch(fail);
      }, fail);
    });
    // A client that went away mid-body has no one to answer.
    req.on('error', () => res.destroy());
  }

  function handleAuthz(req: IncomingMessage, res: ServerResponse, token: string, question: AuthzQuestion): void {
    const started = performance.now();
    const fail = failed(res, AUTHZ_PATH);
    // Answered with the other requests of this turn (TurnBatch).
    batch.add(() => {
      respond(req, res, AUTHZ_PATH, started, (facts) => {
        const headers = answerAuthz(verifier, deps, token, question, facts);
        return headers instanceof Promise ? headers.then(authzAnswer) : authzAnswer(headers);
      })?.catch(fail);
    }, fail);
  }

  return {
    get answered() {
      return answered;
    },
    handle(req, res) {
      if (!isClosing() && req.url !== undefined) {
        if (req.method === 'POST' && req.url === VERIFY_PATH) {
          const token = verifyEligible(req);
          if (token !== null) return handleVerify(req, res, token);
        } else if (req.method === 'GET' && req.url.startsWith(AUTHZ_PATH) && (req.url.length === AUTHZ_PATH.length || req.url[AUTHZ_PATH.length] === '?')) {
          // The token judged is the one the gateway forwards; without one, the route answers the 401.
          const token = bearerOf(req.headers.authorization);
          const question = token === null ? null : authzQuestionOf(req.url);
          if (token !== null && question !== null) return handleAuthz(req, res, token, question);
        }
      }
      options.fastify(req, res);
    },
  };
}

/** A forward-auth 200: its headers, and an empty body with a JSON type, as the route's `send(null)` answers. */
function authzAnswer(headers: Readonly<Record<string, string>>): Answer {
  return { headers, json: '' };
}

function lastEntry(value: string): string {
  const comma = value.lastIndexOf(',');
  return (comma === -1 ? value : value.slice(comma + 1)).trim();
}
