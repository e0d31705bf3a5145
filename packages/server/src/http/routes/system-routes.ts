import { sql } from 'kysely';
import Type from 'typebox';
import { tokenPatternSource } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { ServiceUnavailableError } from '@keyward/core';
import type { Metrics } from '../../metrics/metrics.ts';
import { API_VERSION } from '../openapi.ts';
import { ProblemResponse, named } from '../schemas.ts';

const TAGS = ['System'];
const VersionInfo = named(
  'VersionInfo',
  Type.Object({
    api: Type.String({ description: 'The API version in the paths (/api/v1).' }),
    server: Type.String(),
    tokenFormat: Type.Object(
      { pattern: Type.String({ description: 'A regular expression matching every token of this deployment.' }), prefixes: Type.Object({ personal: Type.String(), client: Type.String() }) },
      { description: 'For secret scanners.' },
    ),
  }),
);
const Health = named('Health', Type.Object({ status: Type.Literal('ok') }));
const Readiness = named(
  'Readiness',
  Type.Object({
    status: Type.Union([Type.Literal('ready'), Type.Literal('degraded')], { description: 'degraded: Redis does not answer; this replica serves from its own limits and events.' }),
    checks: Type.Object({ database: Type.Literal('ok'), cache: Type.Union([Type.Literal('ok'), Type.Literal('in-process'), Type.Literal('unreachable')]) }),
    degraded: Type.Array(Type.Literal('redis'), { description: 'Each dependency this replica runs without (empty when ready).' }),
  }),
);
const MetricsText = { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: Type.String() } } };

// A readiness probe must answer in time even when the database hangs rather than refuses.
const DATABASE_CHECK_TIMEOUT_MS = 2000;

async function isDatabaseAnswering(ctx: AppContext): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DATABASE_CHECK_TIMEOUT_MS)));
  try {
    return await Promise.race([sql`select 1`.execute(ctx.database.db).then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function systemRoutes(app: App, ctx: AppContext, serverVersion: string, metrics: Metrics): Promise<void> {
  const open = { config: { auth: 'none' as const } };

  app.get('/api/version', { ...open, schema: { tags: TAGS, operationId: 'getVersion', summary: 'API and server version, and the token format for secret scanners', response: { 200: VersionInfo } } }, async () => ({
    api: API_VERSION,
    server: serverVersion,
    tokenFormat: { pattern: tokenPatternSource(ctx.config.prefixes), prefixes: ctx.config.prefixes },
  }));

  app.get('/healthz', { ...open, schema: { tags: TAGS, operationId: 'checkLiveness', summary: 'Liveness: the process answers', response: { 200: Health } } }, async () => ({ status: 'ok' as const }));

  // Without the database nothing works: 503. Without Redis this replica still
  // serves from its own limits and events, so it stays in rotation: 200, degraded.
  app.get('/readyz', { ...open, schema: { tags: TAGS, operationId: 'checkReadiness', summary: 'Readiness: the database answers (503 otherwise); 200 degraded, naming redis in `degraded`, when Redis does not', response: { 200: Readiness, 503: ProblemResponse } } }, async () => {
    const [isDatabaseUp, isCacheUp] = await Promise.all([
      isDatabaseAnswering(ctx),
      ctx.redis ? ctx.redis.ping() : null,
    ]);
    if (!isDatabaseUp) throw new ServiceUnavailableError(`The database is not reachable${isCacheUp === false ? ', nor is Redis' : ''}.`);
    const cache = isCacheUp === null ? ('in-process' as const) : isCacheUp ? ('ok' as const) : ('unreachable' as const);
    // Names each dependency this replica runs without, so an operator (or a probe) sees which one at a glance.
    const degraded: Array<'redis'> = cache === 'unreachable' ? ['redis'] : [];
    return { status: degraded.length > 0 ? ('degraded' as const) : ('ready' as const), checks: { database: 'ok' as const, cache }, degraded };
  });

  app.get('/metrics', { ...open, schema: { tags: TAGS, operationId: 'getMetrics', summary: 'Prometheus metrics: request durations by route and status, error answers by problem code, process figures', response: { 200: MetricsText } } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
