// Readiness with and without Redis. The app opens REDIS_URL itself here, as in
// production; a reachable Redis is used only when KEYWARD_TEST_REDIS_URL is set,
// an unreachable one (nothing listens on port 1) always.
import { afterEach, expect, it, vi } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { createTestApp, expectProblem, json, type TestApp } from '../../testing/test-app.ts';

const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL;
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:1';


describeEachDialect('GET /readyz', (open) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('answers ready with the cache in-process when REDIS_URL is unset', async () => {
    t = await createTestApp(open);
    expect(t.context.redis).toBeNull();
    const response = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ status: 'ready', checks: { database: 'ok', cache: 'in-process' }, degraded: [] });
  });

  it('answers 200 degraded with the cache unreachable when Redis does not answer', async () => {
    t = await createTestApp(open, { env: { REDIS_URL: UNREACHABLE_REDIS_URL } });
    const response = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ status: 'degraded', checks: { database: 'ok', cache: 'unreachable' }, degraded: ['redis'] });
  });

  it('answers 503 service_unavailable when the database is gone, whatever Redis says', async () => {
    t = await createTestApp(open, { env: { REDIS_URL: UNREACHABLE_REDIS_URL } });
    await t.database.close();
    expectProblem(await t.app.inject({ method: 'GET', url: '/readyz' }), 503, 'service_unavailable');
  });

  if (REDIS_URL) {
    it('answers ready with the database and the cache ok when Redis answers', async () => {
      t = await createTestApp(open, { env: { REDIS_URL } });
      const app = t.app;
      await vi.waitFor(async () => expect(json(await app.inject({ method: 'GET', url: '/readyz' })).checks.cache).toBe('ok'), { timeout: 2000, interval: 10 });
      const response = await app.inject({ method: 'GET', url: '/readyz' });
      expect(response.statusCode).toBe(200);
      expect(json(response)).toEqual({ status: 'ready', checks: { database: 'ok', cache: 'ok' }, degraded: [] });
    });
  }
});

describeEachDialect('the app with REDIS_URL', (open) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('keeps limiting the password flow from local state while Redis is unreachable', async () => {
    t = await createTestApp(open, { env: { REDIS_URL: UNREACHABLE_REDIS_URL, KEYWARD_PASSWORD_FLOW_MAX: '2' } });
    const attempt = () => t!.app.inject({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'ci', email: 'nobody@example.com', password: 'not the password at all' } });
    expect((await attempt()).statusCode).toBe(401);
    expect((await attempt()).statusCode).toBe(401);
    const limited = await attempt();
    expectProblem(limited, 429, 'rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('logs that Redis is unreachable, without the password from its URL', async () => {
    t = await createTestApp(open, { env: { REDIS_URL: 'redis://:hunter2-redis-password@127.0.0.1:1' } });
    const logs = t.logs;
    await vi.waitFor(() => expect(logs.some((line) => line.includes('Redis is unreachable'))).toBe(true), { timeout: 2000, interval: 10 });
    expect(logs.join('')).not.toContain('hunter2');
  });

  if (REDIS_URL) {
    it('closes its Redis connection when the app closes', async () => {
      const app = await createTestApp(open, { env: { REDIS_URL } });
      const redis = app.context.redis!;
      await vi.waitFor(async () => expect(await redis.ping()).toBe(true), { timeout: 2000, interval: 10 });
      await app.close();
      expect(redis.connection.status).toBe('end');
    });
  }
});

describeEachDialect('GET /metrics', (open) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('answers Prometheus text without authentication', async () => {
    t = await createTestApp(open);
    const response = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/plain');
    expect(response.body).toContain('# TYPE keyward_http_request_duration_seconds histogram');
    expect(response.body).toContain('keyward_process_resident_memory_bytes');
  });

  it('counts requests by route pattern and status, and error answers by problem code', async () => {
    t = await createTestApp(open);
    await t.app.inject({ method: 'GET', url: '/api/v1/tokens/tok_doesnotexist123' });
    await t.app.inject({ method: 'GET', url: '/api/v1/tokens/tok_doesnotexist123' });
    await t.app.inject({ method: 'GET', url: '/nowhere' });
    const body = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    // The route pattern, never the id: ids in labels would grow without bound.
    expect(body).toMatch(/keyward_http_request_duration_seconds_count\{[^}]*method="GET",route="\/api\/v1\/tokens\/:id",status_code="401"[^}]*\} 2/);
    expect(body).not.toContain('tok_doesnotexist123');
    expect(body).toMatch(/keyward_http_problems_total\{[^}]*code="unauthenticated"[^}]*\} 2/);
    expect(body).toMatch(/keyward_http_problems_total\{[^}]*code="not_found"[^}]*\} 1/);
  });
});
