// The public leak report of secret-scanning partners: signed with the
// partner's own secret, replay-proof, rate limited, revoking in every
// organization, and saying nothing about what was live.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateToken } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect, openSqliteTestDatabase } from '../../storage/test-databases.ts';
import { auditActions, bearer, createTestApp, expectProblem, json, passwordToken, type TestApp } from '../../testing/test-app.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../testing/webhook-receiver.ts';
import { ANSWER_STEP_MS } from './secret-scanning-routes.ts';

const GITHUB_SECRET = 'github-partner-secret-0123456789abcdefghijklmnop';
const GITHUB_PREVIOUS = 'github-previous-secret-0123456789abcdefghijklmno';
const GITLAB_SECRET = 'gitlab-partner-secret-0123456789abcdefghijklmnop';
const PATH = '/api/v1/secret-scanning/reports';

/** What a partner does, written from the docs rather than with the server's own signing code. */
function sign(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

describeEachDialect('POST /api/v1/secret-scanning/reports', (open) => {
  let t: TestApp;
  let manager: string;

  beforeEach(async () => {
    t = await createTestApp(open, {
      env: {
        KEYWARD_SECRET_SCANNING_PARTNERS: `github:${GITHUB_SECRET}:${GITHUB_PREVIOUS},gitlab:${GITLAB_SECRET}`,
        KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true',
      },
    });
    manager = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'members:manage', 'audit:read'] })).token;
  });
  afterEach(async () => {
    await t.close();
  });

  interface Report {
    partner?: string;
    secret?: string;
    at?: Date;
    /** Sent instead of the body that was signed. */
    tamperedBody?: string;
    signature?: string;
    ip?: string;
  }

  function report(findings: unknown, options: Report = {}): Promise<LightMyRequestResponse> {
    const body = JSON.stringify({ findings });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const partner = options.partner ?? 'github';
    if (partner !== '') headers['keyward-partner'] = partner;
    headers['keyward-signature'] = options.signature ?? sign(options.secret ?? GITHUB_SECRET, body, options.at ?? t.clock.now());
    return t.app.inject({ method: 'POST', url: PATH, headers, payload: options.tamperedBody ?? body, remoteAddress: options.ip ?? '203.0.113.7' });
  }

  const current = (token: string) => t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) });

  it('revokes each live token listed, in whatever organization it lives, and audits it naming the partner and where it was found', async () => {
    const globex = json(await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(manager), payload: { name: 'Globex', slug: 'globex' } }));
    const local = await passwordToken(t, { scopes: ['tokens:read'], organization: 'acme' });
    const foreign = await passwordToken(t, { scopes: ['tokens:read'], organization: 'globex' });

    const response = await report([
      { token: local.token, url: 'https://github.com/acme/app/commit/4f2a', source: 'commit' },
      { token: foreign.token },
      { token: 'not a token' },
    ]);

    expect(response.statusCode, response.body).toBe(202);
    expect(json(response)).toEqual({ received: 3 });
    expect((await current(local.token)).statusCode).toBe(401);
    expect((await current(foreign.token)).statusCode).toBe(401);
    const [here] = await auditActions(t, { action: 'token.leak_reported' });
    expect(here).toMatchObject({
      actor: { type: 'system', id: null },
      authMethod: 'system',
      organizationId: t.organizationId,
      target: { type: 'token', id: local.id },
      ip: '203.0.113.7',
      details: { partner: 'github', url: 'https://github.com/acme/app/commit/4f2a', source: 'commit' },
    });
    const there = await t.context.deps.store.listAuditEvents({ organizationId: globex.id, limit: 10, action: 'token.leak_reported' });
    expect(there).toHaveLength(1);
    expect(there[0]).toMatchObject({ target: { type: 'token', id: foreign.id }, details: { partner: 'github', url: null, source: null } });
  });

  it('tells verifiers at once: a cached valid answer turns REVOKED on the very next verification', async () => {
    const leaked = await passwordToken(t, { scopes: ['tokens:read'] });
    const verifier = await passwordToken(t, { scopes: ['keyward:verify'] });
    const verify = async () => json(await t.app.inject({ method: 'POST', url: '/api/v1/verify', headers: bearer(verifier.token), payload: { token: leaked.token } }));
    expect(await verify()).toMatchObject({ valid: true });

    expect((await report([{ token: leaked.token }])).statusCode).toBe(202);

    expect(await verify()).toMatchObject({ valid: false, code: 'REVOKED' });
  });

  it("sends the owner's webhooks token.leaked with the partner and the URL, redacting a token inside the URL", async () => {
    const receiver: WebhookReceiver = await startWebhookReceiver();
    try {
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: bearer(manager), payload: { url: receiver.url, events: ['token.leaked'] } });
      expect(created.statusCode, created.body).toBe(201);
      const leaked = await passwordToken(t, { scopes: ['tokens:read'] });

      await report([{ token: leaked.token, url: `https://paste.example.com/raw?key=${leaked.token}`, source: 'paste' }]);
      expect(await t.context.webhooks.runOnce()).toBe(1);

      const event = JSON.parse(receiver.received[0]!.body);
      expect(event).toMatchObject({ type: 'token.leaked', data: { token: { id: leaked.id }, report: { partner: 'github', url: 'https://paste.example.com/raw?key=[REDACTED]', source: 'paste' } } });
      expect(receiver.received[0]!.body).not.toContain(leaked.token);
      expect(JSON.stringify(await auditActions(t))).not.toContain(leaked.token);
    } finally {
      await receiver.close();
    }
  });

  it('answers byte for byte the same whether or not anything listed was live', async () => {
    const live = await passwordToken(t, { scopes: ['tokens:read'] });
    const withLive = await report([{ token: live.token }, { token: 'garbage' }]);
    const withNone = await report([{ token: generateToken('kw_pat') }, { token: 'garbage' }]);
    expect(withLive.statusCode).toBe(202);
    expect(withNone.statusCode).toBe(202);
    expect(withLive.body).toBe(withNone.body);
    expect(withLive.headers['content-type']).toBe(withNone.headers['content-type']);
    expect(await auditActions(t, { action: 'token.leak_reported' })).toHaveLength(1);
  });

  it('takes the same time whether or not anything listed was live: the answer waits for the next 250 ms step', async () => {
    const timed = async (token: string) => {
      const started = performance.now();
      expect((await report([{ token }])).statusCode).toBe(202);
      return performance.now() - started;
    };
    const live: number[] = [];
    const none: number[] = [];
    for (let round = 0; round < 3; round++) {
      live.push(await timed((await passwordToken(t, { scopes: ['tokens:read'] })).token));
      none.push(await timed(generateToken('kw_pat')));
    }
    const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[1]!;
    expect(Math.min(...live, ...none)).toBeGreaterThanOrEqual(ANSWER_STEP_MS - 5);
    // The same step for both; a loaded machine may push either across one, rarely.
    expect(Math.abs(median(live) - median(none))).toBeLessThan(ANSWER_STEP_MS / 2);
  });

  it("accepts the partner's previous secret while it moves to the new one, and each partner's own secret only", async () => {
    const first = await passwordToken(t, { scopes: ['tokens:read'] });
    const second = await passwordToken(t, { scopes: ['tokens:read'] });
    expect((await report([{ token: first.token }], { secret: GITHUB_PREVIOUS })).statusCode).toBe(202);
    expect((await report([{ token: second.token }], { partner: 'gitlab', secret: GITLAB_SECRET })).statusCode).toBe(202);
    expect((await current(first.token)).statusCode).toBe(401);
    expect((await current(second.token)).statusCode).toBe(401);

    const third = await passwordToken(t, { scopes: ['tokens:read'] });
    expectProblem(await report([{ token: third.token }], { partner: 'gitlab', secret: GITHUB_SECRET }), 401, 'unauthenticated');
    expect((await current(third.token)).statusCode).toBe(200);
  });

  it('refuses an unknown partner, a wrong signature, an altered body and a stale or future timestamp with the same 401, and revokes nothing', async () => {
    const target = await passwordToken(t, { scopes: ['tokens:read'] });
    const findings = [{ token: target.token }];
    const fiveMinutesAndOne = 301_000;
    const refusals = [
      await report(findings, { partner: 'bitbucket' }),
      await report(findings, { partner: '' }),
      await report(findings, { secret: 'a-wrong-secret-of-sufficient-length-0123456789' }),
      await report(findings, { tamperedBody: JSON.stringify({ findings: [{ token: target.token }, { token: 'more' }] }) }),
      await report(findings, { at: new Date(t.clock.now().getTime() - fiveMinutesAndOne) }),
      await report(findings, { at: new Date(t.clock.now().getTime() + fiveMinutesAndOne) }),
      await report(findings, { signature: 'v1=' + 'a'.repeat(64) }),
      await report(findings, { signature: 'garbage' }),
    ];
    const bodies = refusals.map((response) => {
      const body = expectProblem(response, 401, 'unauthenticated');
      return { title: body.title, detail: body.detail };
    });
    expect(new Set(bodies.map((body) => JSON.stringify(body))).size).toBe(1);
    expect((await current(target.token)).statusCode).toBe(200);
    expect(await auditActions(t, { action: 'token.leak_reported' })).toHaveLength(0);
  });

  it('accepts a signature made up to five minutes ago, and a replay of it within that time changes nothing more', async () => {
    const target = await passwordToken(t, { scopes: ['tokens:read'] });
    const at = new Date(t.clock.now().getTime() - 299_000);
    expect((await report([{ token: target.token }], { at })).statusCode).toBe(202);
    expect((await report([{ token: target.token }], { at })).statusCode).toBe(202);
    expect(await auditActions(t, { action: 'token.leak_reported' })).toHaveLength(1);
  });

  it('validates the signed body only once the signature holds: 1 to 1000 findings, https URLs', async () => {
    expectProblem(await report([]), 400, 'validation_failed');
    expectProblem(await report(Array.from({ length: 1001 }, (_, index) => ({ token: `leak-${index}` }))), 400, 'validation_failed');
    expectProblem(await report([{ token: 'x', url: 'javascript:alert(1)' }]), 400, 'validation_failed');
    expectProblem(await report([{ token: 'x', extra: true }]), 400, 'validation_failed');
    expect((await report(Array.from({ length: 1000 }, (_, index) => ({ token: `leak-${index}` })))).statusCode).toBe(202);
    // Unsigned, the same bad body is only a 401.
    expectProblem(await report([], { partner: 'nobody' }), 401, 'unauthenticated');
  });

  it('never writes a partner secret or a reported token to the logs', async () => {
    const target = await passwordToken(t, { scopes: ['tokens:read'] });
    await report([{ token: target.token }]);
    await report([{ token: target.token }], { secret: 'a-wrong-secret-of-sufficient-length-0123456789' });
    const logs = t.logs.join('\n');
    expect(logs).not.toContain(GITHUB_SECRET);
    expect(logs).not.toContain(target.token);
  });
});

describeEachDialect('secret-scanning partner rate limits', (open) => {
  let t: TestApp;
  const configDirs: string[] = [];

  afterEach(async () => {
    await t?.close();
    await Promise.all(configDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  /** Limits come from the config file; the partners, with their secrets, from the environment. */
  async function appWithLimits(perPartner: { max: number; windowSeconds: number }, perIp = { max: 1000, windowSeconds: 60 }, env: Record<string, string> = {}): Promise<TestApp> {
    const dir = await mkdtemp(join(tmpdir(), 'keyward-scanning-'));
    configDirs.push(dir);
    const file = join(dir, 'keyward.config.json');
    await writeFile(file, JSON.stringify({ secretScanning: { rateLimits: { perPartner, perIp } } }));
    return createTestApp(open, { env: { KEYWARD_CONFIG: file, KEYWARD_SECRET_SCANNING_PARTNERS: `github:${GITHUB_SECRET},gitlab:${GITLAB_SECRET}`, ...env } });
  }

  function signedReport(partner: string, secret: string, ip: string): Promise<LightMyRequestResponse> {
    const body = JSON.stringify({ findings: [{ token: 'garbage' }] });
    return t.app.inject({
      method: 'POST',
      url: PATH,
      headers: { 'content-type': 'application/json', 'keyward-partner': partner, 'keyward-signature': sign(secret, body, t.clock.now()) },
      payload: body,
      remoteAddress: ip,
    });
  }

  it('limits each partner over all its addresses, with Retry-After and RateLimit headers, and leaves other partners alone', async () => {
    t = await appWithLimits({ max: 3, windowSeconds: 60 });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const accepted = await signedReport('github', GITHUB_SECRET, `198.51.100.${attempt}`);
      expect(accepted.statusCode).toBe(202);
      expect(accepted.headers['ratelimit-remaining']).toBe(String(3 - attempt));
    }
    const refused = await signedReport('github', GITHUB_SECRET, '198.51.100.9');
    expectProblem(refused, 429, 'rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '0' });
    expect((await signedReport('gitlab', GITLAB_SECRET, '198.51.100.9')).statusCode).toBe(202);
  });

  it.runIf(process.env.KEYWARD_TEST_REDIS_URL)('shares the per-partner count between replicas through Redis (REDIS_URL)', async () => {
    const shared = { REDIS_URL: process.env.KEYWARD_TEST_REDIS_URL!, KEYWARD_REDIS_PREFIX: `keyward-scanning-test-${randomBytes(5).toString('hex')}:` };
    t = await appWithLimits({ max: 2, windowSeconds: 60 }, undefined, shared);
    const first = t;
    const second = await appWithLimits({ max: 2, windowSeconds: 60 }, undefined, shared);
    try {
      expect((await signedReport('github', GITHUB_SECRET, '198.51.100.1')).statusCode).toBe(202);
      t = second;
      expect((await signedReport('github', GITHUB_SECRET, '198.51.100.2')).statusCode).toBe(202);
      expectProblem(await signedReport('github', GITHUB_SECRET, '198.51.100.3'), 429, 'rate_limited');
      t = first;
      expectProblem(await signedReport('github', GITHUB_SECRET, '198.51.100.4'), 429, 'rate_limited');
    } finally {
      await second.close();
      t = first;
    }
  });

  it('limits each address before any signature is checked, so guessing costs attempts', async () => {
    t = await appWithLimits({ max: 1000, windowSeconds: 60 }, { max: 2, windowSeconds: 60 });
    expectProblem(await signedReport('github', 'a-wrong-secret-of-sufficient-length-0123456789', '198.51.100.1'), 401, 'unauthenticated');
    expectProblem(await signedReport('nobody', GITHUB_SECRET, '198.51.100.1'), 401, 'unauthenticated');
    const refused = await signedReport('github', GITHUB_SECRET, '198.51.100.1');
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.headers['retry-after']).toBeDefined();
    expect((await signedReport('github', GITHUB_SECRET, '198.51.100.2')).statusCode).toBe(202);
  });
});

describe('docs/secret-scanning.md, for partners', () => {
  const doc = readFileSync(new URL('../../../../../docs/secret-scanning.md', import.meta.url), 'utf8');
  const block = (language: string, containing: string) => {
    const found = [...doc.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((match) => match[1]!).find((code) => code.includes(containing));
    if (!found) throw new Error(`docs/secret-scanning.md has no \`\`\`${language} block with ${containing}`);
    return found;
  };
  let t: TestApp;
  let url: string;

  beforeEach(async () => {
    t = await createTestApp(openSqliteTestDatabase, { env: { KEYWARD_SECRET_SCANNING_PARTNERS: `github:${GITHUB_SECRET}` } });
    // The examples sign with the real clock.
    t.clock.advance(Date.now() - t.clock.now().getTime());
    url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(async () => {
    await t.close();
  });

  const isRevoked = async (token: string) => (await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) })).statusCode === 401;

  it('signs a report with its Node example that the server accepts', async () => {
    const source = block('mjs', 'signReport').replace("import { createHmac } from 'node:crypto';", '').replace('export function', 'function');
    const signReport = new Function('createHmac', `${source}\nreturn signReport;`)(createHmac) as (partner: string, secret: string, findings: unknown[]) => { body: string; headers: Record<string, string> };
    const leaked = await passwordToken(t, { scopes: ['tokens:read'] });
    const { body, headers } = signReport('github', GITHUB_SECRET, [{ token: leaked.token, url: 'https://example.com/leak', source: 'commit' }]);
    const response = await fetch(`${url}${PATH}`, { method: 'POST', headers, body });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ received: 1 });
    expect(await isRevoked(leaked.token)).toBe(true);
  });

  it('signs a report with its openssl and curl example that the server accepts', async () => {
    const leaked = await passwordToken(t, { scopes: ['tokens:read'] });
    const script = block('sh', 'openssl dgst').replace('kw_pat_…', leaked.token);
    // Asynchronously: the server answering curl is this process.
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { env: { PATH: process.env.PATH ?? '', KEYWARD_URL: url, KEYWARD_PARTNER_SECRET: GITHUB_SECRET }, timeout: 10_000 });
    expect(JSON.parse(stdout)).toEqual({ received: 1 });
    expect(await isRevoked(leaked.token)).toBe(true);
  });
});
