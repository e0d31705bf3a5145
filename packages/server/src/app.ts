// Builds the Fastify application from its parts. No listening, no process
// wiring: tests call buildApp() and use app.inject().
import cookie from '@fastify/cookie';
import { TypeBoxValidatorCompiler, registerAjvFormats, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyReply } from 'fastify';
import { Settings } from 'typebox/system';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { ServiceUnavailableError, ValidationError, type EventBus, type Keyring, type PasswordHasher, type ServiceDeps } from '@keyward/core';
import type { KeywardConfig } from './config/config.ts';
import { createMemoryEventBus } from './events/memory-event-bus.ts';
import { createRedisEventBus } from './events/redis-event-bus.ts';
import type { App, AppContext } from './http/app-types.ts';
import { createAuthHook } from './http/authenticate.ts';
import { registerOpenApi } from './http/openapi.ts';
import { PROBLEM_CONTENT_TYPE, problem, scrubProblem, toProblem, type Problem } from './http/problem.ts';
import { createProblemAnswerer } from './http/problem-answer.ts';
import { createVerifyFastPath, type VerifyFastPath } from './http/verify-fast-path.ts';
import { authRoutes } from './http/routes/auth-routes.ts';
import { catalogRoutes } from './http/routes/catalog-routes.ts';
import { clientRoutes } from './http/routes/client-routes.ts';
import { consoleRoutes, type ConsolePage } from './http/routes/console-routes.ts';
import { eventRoutes } from './http/routes/event-routes.ts';
import { memberRoutes } from './http/routes/member-routes.ts';
import { organizationRoutes } from './http/routes/organization-routes.ts';
import { resourceRoutes } from './http/routes/resource-routes.ts';
import { secretScanningRoutes } from './http/routes/secret-scanning-routes.ts';
import { systemRoutes } from './http/routes/system-routes.ts';
import { tokenImportRoutes } from './http/routes/token-import-routes.ts';
import { tokenRoutes } from './http/routes/token-routes.ts';
import { usageRoutes } from './http/routes/usage-routes.ts';
import { answerClientError, createMethodIndex, findNulCharacter, requestIdFor, securityHeaders } from './http/security.ts';
import { createLogger, createSecretScrubber } from './logging/logger.ts';
import { createMetrics } from './metrics/metrics.ts';
import { argon2Hasher } from './passwords/argon2-hasher.ts';
import { createLimiters } from './rate-limit/limiters.ts';
import { openRedisClient, type RedisClient } from './redis/redis-client.ts';
import type { Database } from './storage/index.ts';
import { KyselyStore } from './storage/index.ts';
import { UsageStore } from './storage/usage-rows.ts';
import { createUsageRecorder } from './usage/usage-recorder.ts';
import { SERVER_VERSION } from './version.ts';
import { VerificationStore } from './storage/verification-rows.ts';
import { VerificationLimits } from './verification/verification-limits.ts';
import { Verifier } from './verification/verifier.ts';
import { verificationRoutes } from './http/routes/verification-routes.ts';
import { webhookRoutes } from './http/routes/webhook-routes.ts';
import { WebhookStore } from './storage/webhook-rows.ts';
import { WebhookWorker } from './webhooks/delivery-worker.ts';
import { ExpiryWarningJob } from './webhooks/expiry-warnings.ts';
import { ExpiredTokenEventJob } from './jobs/expired-token-events.ts';
import { RetentionPurgeJob } from './jobs/retention-purge.ts';
import { UnusedTokenRevocationJob } from './jobs/unused-token-revocation.ts';
import { HeapCompactor } from './memory/heap-compactor.ts';

export interface AppOptions {
  config: KeywardConfig;
  database: Database;
  keyring: Keyring;
  /** The clock; tests pass one they can move. */
  now?: () => Date;
  bus?: EventBus;
  passwords?: PasswordHasher;
  /** Where logs go (stdout by default); tests capture them. */
  logStream?: Writable;
  /** First-run setup token, while no user exists. */
  setupToken?: string | null;
  /**
   * Redis for rate limits and events; the caller keeps it and closes it. Without
   * one, the app opens `config.redisUrl` (if set) itself and closes it last, when it closes.
   */
  redis?: RedisClient;
  /** The built web console (packages/console/dist by default). */
  consoleDir?: string;
}

registerAjvFormats();
// TypeBox stops at 8 issues and a union spends three on one field, so a body
// with a few bad fields would not have each of them named.
Settings.Set({ maxErrors: 100 });

/** The lifecycle services' dependencies, shared by the HTTP app and the CLI. */
export function createServiceDeps(options: Pick<AppOptions, 'config' | 'database' | 'keyring' | 'now' | 'bus' | 'passwords'> & Pick<ServiceDeps, 'reportError'>): ServiceDeps {
  return {
    store: new KyselyStore(options.database.db),
    bus: options.bus ?? createMemoryEventBus(),
    keyring: options.keyring,
    catalog: options.config.catalog,
    prefixes: options.config.prefixes,
    legacyPrefixes: options.config.legacyTokenPrefixes,
    passwords: options.passwords ?? argon2Hasher,
    now: options.now ?? (() => new Date()),
    nowMs: options.now ? () => options.now!().getTime() : Date.now,
    reportError: options.reportError,
  };
}

export async function buildApp(options: AppOptions): Promise<{ app: App; context: AppContext }> {
  const { config } = options;
  const log = createLogger({ level: config.logLevel, format: config.logFormat, prefixes: config.prefixes, stream: options.logStream });
  const ownRedis = options.redis === undefined && config.redisUrl ? openRedisClient({ url: config.redisUrl, keyPrefix: config.redisPrefix, log }) : null;
  const redis = options.redis ?? ownRedis;
  const metrics = createMetrics();
  const redisBus = options.bus === undefined && redis ? createRedisEventBus(redis, { observer: metrics.bus }) : null;
  const deps = createServiceDeps({
    ...options,
    bus: options.bus ?? redisBus ?? undefined,
    reportError: (error, what) => log.warn({ err: error }, what),
  });
  const usage = createUsageRecorder({
    store: new UsageStore(options.database.db, options.database.capabilities),
    now: deps.now,
    log,
    onFlush: (outcome) => metrics.verification.flushed('usage', outcome),
  });
  const verifier = new Verifier({
    deps,
    store: new VerificationStore(options.database.db, options.database.reader ?? null),
    limits: new VerificationLimits({
      redis: redis?.connection,
      keyPrefix: '',
      failuresPerIp: config.verification.failuresPerIp,
      now: () => deps.now().getTime(),
    }),
    log,
    cache: { max: config.verification.cacheMax, ttlMs: config.verification.cacheTtlMs, negativeTtlMs: config.verification.negativeTtlMs },
    lastUseIntervalMs: config.verification.lastUseIntervalMs,
    observer: metrics.verification,
    usage,
  });
  metrics.watch({
    lastUsePending: () => verifier.lastUse.size,
    usagePending: () => usage.pendingCount(),
    unsentEvents: redisBus ? () => redisBus.unsentCount : undefined,
    pool: () => options.database.poolStats(),
  });
  // Events missed while Redis was away could leave revoked tokens cached here: start over.
  redisBus?.onGap((reason) => {
    if (reason !== 'subscribed') log.info({ reason }, 'the event bus may have missed events while Redis was away: dropped every cached token');
    verifier.reset();
  });
  const jobOptions = { db: options.database.db, read: options.database.capabilities.readTimestamp, now: deps.now, log };
  const context: AppContext = {
    deps,
    config,
    database: options.database,
    limiters: createLimiters(config.rateLimits, redis?.connection),
    redis,
    verifier,
    setup: { token: options.setupToken ?? null },
    usage,
    webhooks: new WebhookWorker({
      store: new WebhookStore(options.database.db, options.database.capabilities.readTimestamp),
      keyring: options.keyring,
      now: deps.now,
      log,
      allowPrivate: config.webhooks.allowPrivate,
    }),
    expiryWarnings: new ExpiryWarningJob(jobOptions),
    expiredTokens: new ExpiredTokenEventJob(jobOptions),
    unusedTokens: new UnusedTokenRevocationJob({ ...jobOptions, deps }),
    retention: new RetentionPurgeJob(jobOptions),
    verifyFastPath: null,
    heapCompactor: new HeapCompactor({ log, onCompacted: (outcome) => metrics.heapCompacted(outcome.seconds) }),
  };
  const scrub = createSecretScrubber(config.prefixes);
  const answerProblem = createProblemAnswerer({ capabilities: options.database.capabilities, countProblem: (code) => metrics.countProblem(code), scrub });
  // Every problem answer leaves through here, so none repeats a token the caller pasted.
  const sendProblem = (reply: FastifyReply, body: Problem) => reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(scrubProblem(body, scrub));

  // Set once the routes exist (end of buildApp): /verify and /authz answered in front of Fastify.
  let verifyFastPath: VerifyFastPath | null = null;
  let fastifyHandler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  const app: App = Fastify({
    // Node's server as Fastify makes it (its timeouts), with the verification fast path in front of Fastify's handler.
    serverFactory: (handler, serverOptions) => {
      fastifyHandler = handler;
      const { keepAliveTimeout = 72_000, requestTimeout = 0, connectionTimeout = 0 } = serverOptions as { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number };
      const server = createServer((req, res) => (verifyFastPath ? verifyFastPath.handle(req, res) : handler(req, res)));
      server.keepAliveTimeout = keepAliveTimeout;
      server.requestTimeout = requestTimeout;
      server.setTimeout(connectionTimeout);
      return server;
    },
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    genReqId: requestIdFor,
    // A URL Fastify cannot even route (bad percent-encoding) still gets a problem answer with the usual headers.
    frameworkErrors: (error, request, reply: FastifyReply) => {
      securityHeaders(request, reply);
      const body = error.code === 'FST_ERR_BAD_URL' ? problem('validation_failed', 'The URL is malformed.', { errors: [{ field: 'url', message: 'is not validly percent-encoded' }] }) : toProblem(error);
      void sendProblem(reply, body);
    },
    // Headers or a URL too large for Node's parser never reach a route: answered on the socket.
    clientErrorHandler: answerClientError,
    // Requests arriving while the server closes are refused by the hook below instead, as a problem answer.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  })
    .withTypeProvider<TypeBoxTypeProvider>()
    .setValidatorCompiler(TypeBoxValidatorCompiler);

  // Before anything it needs closes: the round in flight finishes (each request within its timeout).
  app.addHook('onClose', () => context.webhooks.stop());
  app.addHook('onClose', () => context.expiryWarnings.stop());
  app.addHook('onClose', () => context.expiredTokens.stop());
  app.addHook('onClose', () => context.unusedTokens.stop());
  app.addHook('onClose', () => context.retention.stop());
  app.addHook('onClose', () => context.heapCompactor.stop());
  // onClose runs once the server has stopped and in-flight requests are done:
  // the verifier's buffers are written before Redis (and the caller's database) go.
  app.addHook('onClose', () => verifier.close());
  if (ownRedis) app.addHook('onClose', () => ownRedis.close());
  // Writes the usage counts still buffered; the caller closes the database after the app.
  app.addHook('onClose', () => context.usage.close());

  const allowedMethods = createMethodIndex(app);
  app.decorateRequest('actor', null);
  app.decorateRequest('session', null);
  // JSON only: anything else is a 415, not a schema error about a string body.
  app.removeContentTypeParser(['text/plain']);
  await app.register(cookie);
  // While closing, answers end their connection, so a client (or load balancer)
  // sends its next request to another replica instead of one about to go.
  let isClosing = false;
  app.addHook('preClose', async () => {
    isClosing = true;
  });
  // The verification entry points (the hot path) run in their own context, which
  // sets their headers, authenticates their callers and records their metrics
  // itself (verification-routes.ts): the hooks below step aside for its requests.
  // Callback-style hooks: no promise per hook and request.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.verificationEntryPoint) return done();
    securityHeaders(request, reply);
    // A request that arrives (on a kept-alive connection) after closing began is
    // not started: 503 with Retry-After, so the client retries another replica.
    done(isClosing ? new ServiceUnavailableError('This replica is shutting down; retry the request.') : undefined);
  });
  const authenticate = createAuthHook(context);
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.verificationEntryPoint) return done();
    authenticate(request).then(() => {
      const field = findNulCharacter(request.body, '') ?? findNulCharacter(request.query, '');
      done(field !== null ? ValidationError.field(field || 'body', 'must not contain NUL characters') : undefined);
    }, done);
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (isClosing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    if (!request.verificationEntryPoint) metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  app.setErrorHandler((caught: FastifyError, request, reply) => {
    const answer = answerProblem(caught, { log: request.log, usedAuthorization: request.headers.authorization !== undefined, path: request.url.split('?')[0] ?? '/' });
    return reply.code(answer.problem.status).headers(answer.headers).type(PROBLEM_CONTENT_TYPE).send(answer.problem);
  });

  // Set once the console routes are registered, below.
  let consolePage: ConsolePage = () => false;
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = allowedMethods(path);
    // A browser reloading a console page such as /tokens gets the app, which routes it.
    if (allowed.length === 0 && consolePage(request, reply)) return;
    if (allowed.length > 0) {
      metrics.countProblem('method_not_allowed');
      reply.header('allow', allowed.join(', '));
      return sendProblem(reply, problem('method_not_allowed', `${request.method} is not allowed here; use ${allowed.join(', ')}.`, { instance: path }));
    }
    metrics.countProblem('not_found');
    return sendProblem(reply, problem('not_found', `Nothing at ${path}.`, { instance: path }));
  });

  await registerOpenApi(app, { serverVersion: SERVER_VERSION, publicUrl: config.publicUrl });
  await systemRoutes(app, context, SERVER_VERSION, metrics);
  await authRoutes(app, context);
  await tokenRoutes(app, context);
  await secretScanningRoutes(app, context);
  await tokenImportRoutes(app, context);
  await app.register((entryPoints) => verificationRoutes(entryPoints, context, { metrics, isClosing: () => isClosing }));
  await clientRoutes(app, context);
  await memberRoutes(app, context);
  await resourceRoutes(app, context);
  await organizationRoutes(app, context);
  await catalogRoutes(app, context);
  await usageRoutes(app, context);
  await eventRoutes(app, context, metrics, { onGap: redisBus ? (listener) => redisBus.onGap(listener) : undefined });
  await webhookRoutes(app, context);
  consolePage = await consoleRoutes(app, context, options.consoleDir);
  if (config.verifyFastPath) {
    verifyFastPath = createVerifyFastPath({
      context,
      log,
      metrics,
      answerProblem,
      isClosing: () => isClosing,
      fastify: (req, res) => fastifyHandler(req, res),
      replay: (req, body) => app.inject({ method: 'POST', url: req.url ?? '/', headers: req.headers, payload: body, remoteAddress: req.socket.remoteAddress }),
    });
    context.verifyFastPath = verifyFastPath;
  }
  return { app, context };
}
