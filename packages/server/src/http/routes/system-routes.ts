import { sql } from 'kysely';
import { tokenPatternSource } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { ServiceUnavailableError } from '@keyward/core';
import type { Metrics } from '../../metrics/metrics.ts';
import { API_VERSION } from '../openapi.ts';

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

  app.get('/api/version', { ...open, schema: { tags: ['System'], summary: 'API and server version, and the token format for secret scanners' } }, async () => ({
    api: API_VERSION,
    server: serverVersion,
    tokenFormat: { pattern: tokenPatternSource(ctx.config.prefixes), prefixes: ctx.config.prefixes },
  }));

  app.get('/healthz', { ...open, schema: { tags: ['System'], summary: 'Liveness: the process answers' } }, async () => ({ status: 'ok' }));

  // Without the database nothing works: 503. Without Redis this replica still
  // serves from its own limits and events, so it stays in rotation: 200, degraded.
  app.get('/readyz', { ...open, schema: { tags: ['System'], summary: 'Readiness: the database answers (503 otherwise); 200 degraded, naming redis in `degraded`, when Redis does not' } }, async () => {
    const [isDatabaseUp, isCacheUp] = await Promise.all([
      isDatabaseAnswering(ctx),
      ctx.redis ? ctx.redis.ping() : null,
    ]);
    if (!isDatabaseUp) throw new ServiceUnavailableError(`The database is not reachable${isCacheUp === false ? ', nor is Redis' : ''}.`);
    const cache = isCacheUp === null ? 'in-process' : isCacheUp ? 'ok' : 'unreachable';
    // Names each dependency this replica runs without, so an operator (or a probe) sees which one at a glance.
    const degraded = cache === 'unreachable' ? ['redis'] : [];
    return { status: degraded.length > 0 ? 'degraded' : 'ready', checks: { database: 'ok', cache }, degraded };
  });

  app.get('/metrics', { ...open, schema: { tags: ['System'], summary: 'Prometheus metrics: request durations by route and status, error answers by problem code, process figures' } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
