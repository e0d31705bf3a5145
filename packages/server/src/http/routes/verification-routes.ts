// The verification entry points (SPEC §4): POST /api/v1/verify for resource
// servers, POST /oauth/introspect (RFC 7662) for gateways with an
// introspection plugin, GET /api/v1/authz for forward-auth (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth). All three ask the
// same Verifier, so they answer alike.
//
// They run in their own Fastify context (see app.ts), without the management
// API's hooks: one hook sets the headers, the routes that have a caller
// authenticate it, and the request metrics are recorded as everywhere else.
import { isIP } from 'node:net';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { LRUCache } from 'lru-cache';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ForbiddenError,
  InsufficientScopeError,
  RateLimitedError,
  ServiceUnavailableError,
  UnauthenticatedError,
  ValidationError,
  evaluateRequire,
  missingScopesFor,
  parseRequireExpression,
  VERIFY_CODES,
  type RequestFacts,
  type VerifiedToken,
  type VerifyResult,
} from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf, bearerOf, createAuthHook, requestFacts, type CallerRequirement } from '../authenticate.ts';
import { apiSecurityHeaders } from '../security.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { problemResponses, secured } from '../openapi.ts';
import { named } from '../schemas.ts';
import { rateLimitHeaders } from '../rate-limit-headers.ts';
import { tokenRateLimited } from '../../verification/bearer-actor.ts';
import type { VerifyOutcome } from '../../verification/verifier.ts';

const TAGS = ['Verification'];
const strict = { additionalProperties: false } as const;
const ScopeName = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_-]{0,31}$', maxLength: 65 });
const ResourceId = Type.String({ pattern: '^[a-z]{3}_[0-9A-Za-z]{1,64}$', maxLength: 68 });

export const VerifyBody = named('VerifyRequest', Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 512, description: 'The token presented to the resource server.' }),
    scopes: Type.Optional(Type.Array(ScopeName, { maxItems: 100, description: 'Every listed scope is required.' })),
    require: Type.Optional(
      Type.String({ minLength: 1, maxLength: 1000, description: 'An expression over scopes with AND, OR and parentheses, e.g. `scans:read AND (clearances:read OR clearances:write)`.' }),
    ),
    resource: Type.Optional(ResourceId),
    ip: Type.Optional(Type.String({ minLength: 2, maxLength: 64, description: "The address the token was presented from; a token with an IP allowlist is refused without it." })),
    cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Credits to spend on a token with a usage quota (default 1; 0 checks without spending).' })),
  },
  { ...strict, description: 'What a resource server asks about a token it was given.' },
));

const ResourceRef = Type.Object({ id: Type.String(), type: Type.String(), name: Type.String() });
const RoleSchema = Type.Union([Type.Literal('viewer'), Type.Literal('member'), Type.Literal('admin'), Type.Literal('owner')]);
const VerifyCodeSchema = Type.Enum(VERIFY_CODES);
export const VerifyResponse = named('VerifyResult', Type.Object({
  valid: Type.Boolean(),
  code: VerifyCodeSchema,
  token: Type.Optional(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      kind: Type.Union([Type.Literal('personal'), Type.Literal('client')]),
      owner: Type.Object({ type: Type.Union([Type.Literal('user'), Type.Literal('client')]), id: Type.String() }),
      organizationId: Type.String(),
      scopes: Type.Array(Type.String(), { description: "Effective scopes: the token's grants capped by its owner's current role." }),
      permission: RoleSchema,
      resources: Type.Array(ResourceRef, { description: 'Ranked effective resources; empty = every resource the owner can access.' }),
      expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
      metadata: Type.Record(Type.String(), Type.Unknown()),
    }),
  ),
  rateLimit: Type.Optional(Type.Object({ limit: Type.Integer(), remaining: Type.Integer(), resetAt: Type.String({ format: 'date-time' }) })),
  remaining: Type.Optional(Type.Integer({ description: 'Credits left, for a token with a usage quota.' })),
}, { description: 'The answer about the token: `valid` and a `code`; `token` only when it is valid.' }));

const IntrospectBody = named('IntrospectRequest', Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 512 }), token_type_hint: Type.Optional(Type.String({ maxLength: 64 })) },
  { ...strict, description: 'application/x-www-form-urlencoded, as RFC 7662 section 2.1 says.' },
));
const IntrospectResponse = named('IntrospectResult', Type.Object(
  {
    active: Type.Boolean(),
    scope: Type.Optional(Type.String()),
    client_id: Type.Optional(Type.String()),
    username: Type.Optional(Type.String()),
    token_type: Type.Optional(Type.String()),
    exp: Type.Optional(Type.Integer()),
    iat: Type.Optional(Type.Integer()),
    sub: Type.Optional(Type.String()),
    organization_id: Type.Optional(Type.String()),
    permission: Type.Optional(Type.String()),
  },
  { description: 'RFC 7662: exactly `{"active": false}` for anything not valid.' },
));

const AuthzQuery = Type.Object(
  {
    scopes: Type.Optional(Type.String({ maxLength: 2000, description: 'Required scopes, separated by commas or spaces; all are needed.' })),
    require: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'A `require` expression over scopes.' })),
    resource: Type.Optional(ResourceId),
  },
  strict,
);

/** Parsed `require` expressions, kept: resource servers send the same few again and again. */
const requirements = new LRUCache<string, (held: ReadonlySet<string>) => boolean>({ max: 1000 });

function compileRequire(text: string | undefined): ((held: ReadonlySet<string>) => boolean) | undefined {
  if (text === undefined) return undefined;
  let check = requirements.get(text);
  if (!check) {
    const expression = parseRequireExpression(text);
    check = (held) => evaluateRequire(expression, held);
    requirements.set(text, check);
  }
  return check;
}

function checkIp(ip: string | undefined): void {
  if (ip !== undefined && (isIP(ip) === 0 || ip.includes('%'))) throw ValidationError.field('ip', 'must be an IPv4 or IPv6 address');
}

export function verifyAnswer(result: VerifyResult) {
  return {
    valid: result.valid,
    code: result.code,
    ...(result.token ? { token: result.token } : {}),
    ...(result.rateLimit ? { rateLimit: { ...result.rateLimit, resetAt: result.rateLimit.resetAt.toISOString() } } : {}),
    ...(result.remaining !== undefined ? { remaining: result.remaining } : {}),
  };
}

export const JSON_TYPE = 'application/json; charset=utf-8';
/**
 * Most answers are exactly `{valid, code, token}` or `{valid, code}`: their JSON
 * is serialized once and sent as is, by the route and by the fast path alike,
 * with its length in bytes for the fast path's Content-Length (measuring a
 * string's UTF-8 length is a scan of it on every answer).
 * A VALID answer's JSON is kept per answer token object, which the verifier
 * builds once per cache entry: it lives and dies with that entry, so a changed
 * token (a new entry) is never answered from an old one. About 450 bytes per
 * token answered VALID here.
 */
const validAnswers = new WeakMap<VerifiedToken, VerifyAnswerText>();
const refusalAnswers = new Map<string, VerifyAnswerText>();

/** A /verify answer's JSON, and its length in bytes as a Content-Length value. */
export interface VerifyAnswerText {
  readonly json: string;
  readonly contentLength: string;
}

/** The JSON of a /verify answer: the same bytes whichever entry (route or fast path) answered. */
export function verifyAnswerText(result: VerifyResult): VerifyAnswerText {
  // Answers with a rate-limit window or a quota balance differ every time.
  if (result.rateLimit === undefined && result.remaining === undefined) {
    // Keyed by the token alone: only ever the VALID answer.
    if (result.token && result.valid && result.code === 'VALID') return remembered(validAnswers, result.token, result);
    if (!result.token) return remembered(refusalAnswers, result.code, result);
  }
  return answerTextOf(result);
}

function answerTextOf(result: VerifyResult): VerifyAnswerText {
  const json = JSON.stringify(verifyAnswer(result));
  return { json, contentLength: String(Buffer.byteLength(json)) };
}

function remembered<K>(answers: { get(key: K): VerifyAnswerText | undefined; set(key: K, text: VerifyAnswerText): unknown }, key: K, result: VerifyResult): VerifyAnswerText {
  let text = answers.get(key);
  if (text === undefined) answers.set(key, (text = answerTextOf(result)));
  return text;
}

export type VerifyRequestBody = Static<typeof VerifyBody>;
/** The body's schema, compiled once: the fast path checks a body with it before answering (verify-fast-path.ts). */
export const checkVerifyBodySchema = Compile(VerifyBody);

/** What the schema cannot say about a /verify body (NUL characters, the ip's form): a 400 before anything is spent. */
export function checkVerifyBody(body: VerifyRequestBody): void {
  refuseNul('token', body.token);
  refuseNul('require', body.require);
  refuseNul('ip', body.ip);
  checkIp(body.ip);
}

/**
 * Verifies for an authenticated caller and returns the answer's JSON; the route
 * and the fast path both answer with it. At once when the verifier decides at
 * once (Verifier.verifyNow); a bad `require` throws its validation error.
 */
export function answerVerify(verifier: AppContext['verifier'], body: VerifyRequestBody, callerOrganizationId: string, request: RequestFacts): VerifyAnswerText | Promise<VerifyAnswerText> {
  const outcome = verifier.verifyNow(
    body.token,
    { scopes: body.scopes, require: compileRequire(body.require), resource: body.resource, ip: body.ip ?? null, cost: body.cost, organizationId: callerOrganizationId },
    { entryPoint: 'verify', spendQuota: true, request },
  );
  return outcome instanceof Promise ? outcome.then(answerOfOutcome) : answerOfOutcome(outcome);
}

const answerOfOutcome = (outcome: VerifyOutcome): VerifyAnswerText => verifyAnswerText(outcome.result);

/** The forward-auth answer for a refusal: the status a gateway passes on to its client. */
function refuseForwardAuth(outcome: VerifyOutcome, required: { scopes: readonly string[]; require?: string | undefined }): never {
  throw withoutStack(() => forwardAuthRefusal(outcome, required));
}

/**
 * Makes an error with no stack trace. A refusal is an expected answer, not a
 * fault: capturing its stack (through the request's async frames) cost more
 * than the rest of a forward-auth refusal, and no one reads it.
 */
function withoutStack(make: () => Error): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function forwardAuthRefusal(outcome: VerifyOutcome, required: { scopes: readonly string[]; require?: string | undefined }): Error {
  const { result } = outcome;
  switch (result.code) {
    case 'INSUFFICIENT_SCOPE': {
      const held = outcome.compiled?.scopeSet ?? new Set<string>();
      const missing = required.scopes.find((scope) => !held.has(scope)) ?? (required.require ? missingScopesFor(parseRequireExpression(required.require), held)[0] : undefined);
      return new InsufficientScopeError(missing ?? 'unknown');
    }
    case 'FORBIDDEN_RESOURCE':
      return new ForbiddenError('The token may not touch this resource.');
    case 'IP_NOT_ALLOWED':
      return new ForbiddenError('The token may not be used from this address.');
    case 'USAGE_EXCEEDED':
      return new ForbiddenError("The token's usage quota is spent.");
    case 'RATE_LIMITED':
      if (result.rateLimit) return tokenRateLimited(outcome.retryAfterSeconds ?? 1, result.rateLimit);
      return new RateLimitedError(outcome.retryAfterSeconds ?? 60, 'Too many failed attempts from this address; try again later.');
    case 'MALFORMED':
      return new UnauthenticatedError('The token is malformed.', 'invalid');
    case 'EXPIRED':
      return new UnauthenticatedError('The token has expired.', 'invalid');
    case 'REVOKED':
      return new UnauthenticatedError('The token has been revoked.', 'invalid');
    case 'DISABLED':
      return new UnauthenticatedError('The token is disabled.', 'invalid');
    default:
      return new UnauthenticatedError('The token is not valid.', 'invalid');
  }
}

/** PostgreSQL cannot store NUL in text: refused as bad input, as the management API's hook does. */
function refuseNul(field: string, value: string | undefined): void {
  if (value !== undefined && value.includes('\u0000')) throw ValidationError.field(field, 'must not contain NUL characters');
}

/** Parsed `scopes` query values, kept: a gateway route sends the same one on every request. */
const scopeLists = new LRUCache<string, readonly string[]>({ max: 1000 });

const NO_SCOPES: readonly string[] = Object.freeze([]);

function scopesOf(query: string | undefined): readonly string[] {
  if (!query) return NO_SCOPES;
  let scopes = scopeLists.get(query);
  if (!scopes) {
    scopes = Object.freeze(query.split(/[\s,]+/).filter(Boolean));
    if (scopes.length > 100) throw ValidationError.field('scopes', 'must name at most 100 scopes');
    scopeLists.set(query, scopes);
  }
  return scopes;
}

export type AuthzQueryValues = Static<typeof AuthzQuery>;
/** The query's schema, compiled once: the fast path checks a query with it before answering (verify-fast-path.ts). */
export const checkAuthzQuerySchema = Compile(AuthzQuery);

/** What a forward-auth request asks, parsed (a 400 before anything is counted when it cannot be). */
export interface AuthzQuestion {
  scopes: readonly string[];
  require: string | undefined;
  check: ((held: ReadonlySet<string>) => boolean) | undefined;
  resource: string | undefined;
}

export function authzQuestion(query: AuthzQueryValues): AuthzQuestion {
  refuseNul('scopes', query.scopes);
  refuseNul('require', query.require);
  return { scopes: scopesOf(query.scopes), require: query.require, check: compileRequire(query.require), resource: query.resource };
}

/**
 * Judges a forward-auth request's token: the X-Keyward-* (and RateLimit-*)
 * headers of a 200, or a thrown error that is the refusal's answer (401, 403,
 * 429). The route and the fast path both answer with it; at once when the
 * verifier decides at once (Verifier.verifyNow).
 */
export function answerAuthz(verifier: AppContext['verifier'], deps: AppContext['deps'], token: string, question: AuthzQuestion, request: RequestFacts): Readonly<Record<string, string>> | Promise<Readonly<Record<string, string>>> {
  const outcome = verifier.verifyNow(
    token,
    { scopes: question.scopes, require: question.check, resource: question.resource, ip: request.ip },
    { entryPoint: 'authz', spendQuota: true, request },
  );
  return outcome instanceof Promise ? outcome.then((decided) => forwardAuthHeaders(decided, question, deps)) : forwardAuthHeaders(outcome, question, deps);
}

function forwardAuthHeaders(outcome: VerifyOutcome, question: AuthzQuestion, deps: AppContext['deps']): Readonly<Record<string, string>> {
  const verified = outcome.result.token;
  if (!outcome.result.valid || !verified) return refuseForwardAuth(outcome, { scopes: question.scopes, require: question.require });
  const state = outcome.result.rateLimit;
  if (!state) return tokenHeadersOf(verified);
  const headers = rateLimitHeaders({ limit: state.limit, remaining: state.remaining, resetSeconds: Math.ceil((state.resetAt.getTime() - deps.now().getTime()) / 1000) });
  return Object.assign(headers, tokenHeadersOf(verified));
}

/**
 * The X-Keyward-* headers of a VALID forward-auth answer. A cached token's
 * verified view is one object for the entry's life (as for `validAnswers`), so
 * they are built once per entry, not joined again on every request.
 */
const tokenHeaders = new WeakMap<VerifiedToken, Readonly<Record<string, string>>>();

function tokenHeadersOf(verified: VerifiedToken): Readonly<Record<string, string>> {
  let headers = tokenHeaders.get(verified);
  if (!headers) {
    headers = Object.freeze({
      'x-keyward-token-id': verified.id,
      'x-keyward-owner': `${verified.owner.type}:${verified.owner.id}`,
      'x-keyward-organization': verified.organizationId,
      'x-keyward-scopes': verified.scopes.join(' '),
      'x-keyward-resources': verified.resources.map((resource) => resource.id).join(','),
    });
    tokenHeaders.set(verified, headers);
  }
  return headers;
}

export interface VerificationRouteOptions {
  metrics: Pick<Metrics, 'observeRequest'>;
  /** True once the server began closing: new requests get a 503, answers end their connection. */
  isClosing: () => boolean;
}

/** The caller of /verify and introspection: a keyward:verify token (or a console session holding that scope). */
export const VERIFY_SCOPE = 'keyward:verify';
const VERIFY_CALLER: CallerRequirement = { auth: 'required', scopes: [VERIFY_SCOPE] };

export async function verificationRoutes(app: App, ctx: AppContext, options: VerificationRouteOptions): Promise<void> {
  const { verifier, deps } = ctx;
  const { metrics, isClosing } = options;
  const authenticateCaller = createAuthHook(ctx, VERIFY_CALLER);
  // Decorates only this context's requests: the app-wide hooks (app.ts) let them through untouched.
  app.decorateRequest('verificationEntryPoint', true);
  // A callback-style hook: no promise per request. The app's onSend hook ends connections while closing.
  app.addHook('onRequest', (request, reply, done) => {
    apiSecurityHeaders(request, reply);
    // A request arriving on a kept-alive connection after closing began is not started.
    done(isClosing() ? new ServiceUnavailableError('This replica is shutting down; retry the request.') : undefined);
  });
  /** The request-duration metric under the route's pattern, as the management API records it. */
  const observed = (route: string) => (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    done();
  };

  app.post('/api/v1/verify', {
    config: VERIFY_CALLER,
    preValidation: authenticateCaller,
    onResponse: observed('/api/v1/verify'),
    schema: {
      tags: TAGS,
      operationId: 'verifyToken',
      summary: 'Verify a token for a resource server',
      description:
        "Answers 200 whenever the caller itself is authorized, whatever the token: branch on `code`. A token of another organization than the caller's is NOT_FOUND. A VALID answer spends `cost` credits of a token's quota and counts against its rate limits.",
      ...secured(),
      body: VerifyBody,
      response: { 200: VerifyResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      checkVerifyBody(request.body);
      const { json } = await answerVerify(verifier, request.body, actorOf(request).organizationId, requestFacts(request));
      // Already JSON: a string with a JSON type goes out as is.
      return reply.type(JSON_TYPE).send(json as unknown as ReturnType<typeof verifyAnswer>);
    },
  });

  await app.register(async (introspection) => {
    // RFC 7662 bodies are form-encoded; only this route accepts that type.
    introspection.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      const form = new URLSearchParams(body as string);
      const fields: Record<string, string> = {};
      for (const [key, value] of form) {
        if (Object.hasOwn(fields, key)) return done(ValidationError.field(key, 'must appear once'), undefined);
        fields[key] = value;
      }
      done(null, fields);
    });
    introspection.withTypeProvider<TypeBoxTypeProvider>().post('/oauth/introspect', {
      config: VERIFY_CALLER,
      preValidation: authenticateCaller,
      onResponse: observed('/oauth/introspect'),
      schema: {
        tags: TAGS,
        operationId: 'introspectToken',
        summary: 'Token introspection (RFC 7662)',
        description: 'For API gateways with an introspection plugin. The caller authenticates with a keyward:verify bearer token; anything not valid answers exactly `{"active": false}`.',
        ...secured(),
        consumes: ['application/x-www-form-urlencoded'],
        body: IntrospectBody,
        response: { 200: IntrospectResponse, ...problemResponses },
      },
      handler: async (request) => {
        refuseNul('token', request.body.token);
        refuseNul('token_type_hint', request.body.token_type_hint);
        const caller = actorOf(request);
        const outcome = await verifier.verify(request.body.token, { ip: null, organizationId: caller.organizationId }, { entryPoint: 'introspect', spendQuota: true, request: requestFacts(request) });
        const token = outcome.result.token;
        if (!outcome.result.valid || !token || !outcome.compiled) return { active: false };
        return {
          active: true,
          scope: token.scopes.join(' '),
          ...(token.owner.type === 'client' ? { client_id: token.owner.id } : {}),
          ...(outcome.compiled.access?.email ? { username: outcome.compiled.access.email } : {}),
          token_type: 'Bearer',
          ...(outcome.compiled.expiresAtMs !== null ? { exp: Math.floor(outcome.compiled.expiresAtMs / 1000) } : {}),
          iat: outcome.compiled.createdAtSeconds,
          sub: token.owner.id,
          organization_id: token.organizationId,
          permission: token.permission,
        };
      },
    });
  });

  app.get('/api/v1/authz', {
    // The gateway forwards its client's Authorization header: the token to judge is the credential.
    config: { auth: 'none' },
    onResponse: observed('/api/v1/authz'),
    schema: {
      tags: TAGS,
      operationId: 'authorizeRequest',
      summary: 'Forward-auth for nginx auth_request, Traefik ForwardAuth and Caddy forward_auth',
      description:
        "Judges the bearer token of the original request (its Authorization header). `scopes` (comma or space separated) and `require` name what the route needs, `resource` the resource it touches. 200 carries X-Keyward-Token-Id, X-Keyward-Owner (`user:<id>` or `client:<id>`), X-Keyward-Organization, X-Keyward-Scopes (space separated) and X-Keyward-Resources (ranked ids, comma separated; empty = all); 401 with a Bearer challenge, 403 insufficient_scope or forbidden, 429 with RateLimit headers. The client address is the socket's unless the request came through KEYWARD_TRUSTED_PROXIES (then X-Forwarded-For).",
      querystring: AuthzQuery,
      response: { 200: Type.Null({ description: 'Allowed; the X-Keyward-* headers describe the token (see above). No body.' }), ...problemResponses },
    },
    handler: async (request, reply) => {
      const token = bearerOf(request.headers.authorization);
      if (token === null) {
        if (request.headers.authorization !== undefined) throw new UnauthenticatedError('The Authorization header must be "Bearer <token>".', 'invalid');
        throw new UnauthenticatedError('This route needs the bearer token of the request being authorized.');
      }
      const question = authzQuestion(request.query);
      const headers = await answerAuthz(verifier, deps, token, question, requestFacts(request));
      return reply.code(200).headers(headers).send(null);
    },
  });
}
