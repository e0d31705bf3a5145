// docs/gateways.md, tested: its nginx and Caddy configurations, read from the
// page, run by the real binaries on 127.0.0.1 in front of a real Keyward
// server and an upstream that echoes what reaches it.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateToken } from '@keyward/core';
import { describeWithBinary } from '../../packages/server/src/testing/requires-binary.ts';
import { startKeywardServer, type KeywardTestServer } from '../../packages/sdk/src/testing/keyward-server.ts';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream.ts';
import { findBinary, freePort, gatewayDir, startGateway, startNginx, type GatewayProcess } from '../../packages/server/src/testing/gateway-process.ts';

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const DOC = readFileSync(join(ROOT, 'docs', 'gateways.md'), 'utf8');

interface Ports {
  keyward: string;
  upstream: string;
  gateway: number;
}

/**
 * The first fenced block of `language` in docs/gateways.md, with the doc's
 * addresses (the gateway's `listen`, Keyward on 8080, the API on 3000)
 * replaced by the test's.
 */
function configFromDoc(language: string, listen: [from: string, to: string], ports: Ports): string {
  const block = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(DOC)?.[1];
  if (!block) throw new Error(`docs/gateways.md has no \`\`\`${language} block`);
  let config = block;
  const replacements: Array<[from: string, to: string]> = [listen, ['127.0.0.1:8080', ports.keyward], ['127.0.0.1:3000', ports.upstream]];
  for (const [from, to] of replacements) {
    // The test relies on these; a changed doc must change the test too.
    if (!config.includes(from)) throw new Error(`the ${language} block of docs/gateways.md no longer contains "${from}"`);
    config = config.replaceAll(from, to);
  }
  return config;
}

interface Gateway {
  name: string;
  binary: string | undefined;
  debianPackage: string;
  /** What the gateway answers when Keyward cannot be reached. */
  unavailableStatus: number;
  start(ports: Ports): Promise<GatewayProcess>;
}

const nginx: Gateway = {
  name: 'nginx auth_request',
  binary: findBinary('nginx'),
  debianPackage: 'nginx',
  unavailableStatus: 503,
  start(ports) {
    const server = configFromDoc('nginx', ['listen 8081;', `listen 127.0.0.1:${ports.gateway};`], ports);
    return startNginx(this.binary!, server, ports.gateway);
  },
};

const caddy: Gateway = {
  name: 'Caddy forward_auth',
  binary: findBinary('caddy'),
  debianPackage: 'caddy',
  unavailableStatus: 502,
  async start(ports) {
    const dir = await gatewayDir('caddy');
    const site = configFromDoc('caddyfile', [':8081 {', `http://127.0.0.1:${ports.gateway} {\n  bind 127.0.0.1`], ports);
    // No admin endpoint, no HTTPS, and storage in the test's directory.
    const caddyfile = `{
  admin off
  auto_https off
  storage file_system ${dir}/storage
}

${site}`;
    await writeFile(join(dir, 'Caddyfile'), caddyfile);
    const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data') };
    return startGateway(dir, this.binary!, ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], ports.gateway, env);
  },
};

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: any;
}

/** GET through the gateway, from `localAddress` (any 127.x address works on loopback). */
function get(port: number, path: string, headers: Record<string, string> = {}, localAddress = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, localAddress, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        const json = /json/.test(response.headers['content-type'] ?? '');
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: json && text ? JSON.parse(text) : text });
      });
    });
    req.once('error', reject);
    req.end();
  });
}

function expectProblem(answer: Answer, status: number, code: string): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ type: `urn:keyward:problem:${code}`, status, code });
}

function describeGateway(gateway: Gateway): void {
  describeWithBinary(gateway.binary, gateway.debianPackage, `docs/gateways.md: ${gateway.name} in front of an API`, () => {
    let keyward: KeywardTestServer;
    let keywardUp = true;
    let upstream: EchoUpstream;
    let proxy: GatewayProcess;
    let port: number;
    const call = (headers: Record<string, string> = {}, localAddress?: string) => get(port, '/api/scans', headers, localAddress);
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

    beforeAll(async () => {
      // The gateway connects from 127.0.0.1: Keyward believes its X-Forwarded-For, as the doc says to configure.
      keyward = await startKeywardServer({ env: { KEYWARD_TRUSTED_PROXIES: '127.0.0.1/32' } });
      upstream = await startEchoUpstream();
      port = await freePort();
      proxy = await gateway.start({ keyward: new URL(keyward.baseUrl).host, upstream: upstream.address, gateway: port });
    });
    afterAll(async () => {
      await proxy?.stop();
      await upstream?.close();
      if (keywardUp) await keyward?.close();
    });

    /** Runs `request` and says whether it reached the upstream. */
    async function reached(request: () => Promise<Answer>): Promise<{ answer: Answer; reachedUpstream: boolean }> {
      const before = upstream.received.length;
      const answer = await request();
      return { answer, reachedUpstream: upstream.received.length > before };
    }

    it("passes a valid token's request on with Keyward's identity headers, replacing the ones a client forged", async () => {
      const clearance = await keyward.createResource('night shift');
      const { token, id } = await keyward.createToken({ scopes: ['scans:read', 'clearances:read'], resources: [clearance] });
      const answer = await call({ ...bearer(token), 'x-keyward-token-id': 'tok_forged', 'x-keyward-organization': 'org_forged', 'x-keyward-scopes': 'tokens:manage' });
      expect(answer.status, proxy.output()).toBe(200);
      expect(answer.body.path).toBe('/api/scans');
      expect(answer.body.headers).toMatchObject({
        'x-keyward-token-id': id,
        'x-keyward-owner': `user:${keyward.t.ownerId}`,
        'x-keyward-organization': keyward.t.organizationId,
        'x-keyward-scopes': 'clearances:read scans:read',
        'x-keyward-resources': clearance,
      });
    });

    it('never lets a forged X-Keyward-Resources through for a token that reaches every resource', async () => {
      const { token } = await keyward.createToken({ scopes: ['scans:read'] });
      const answer = await call({ ...bearer(token), 'x-keyward-resources': 'res_forged' });
      expect(answer.status).toBe(200);
      // nginx drops the empty header; Caddy sends it empty: both mean "every resource".
      expect(answer.body.headers['x-keyward-resources'] ?? '').toBe('');
    });

    it('refuses a request without a token with 401 and a Bearer challenge, before the upstream', async () => {
      const { answer, reachedUpstream } = await reached(() => call());
      expectProblem(answer, 401, 'unauthenticated');
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="keyward"');
      expect(reachedUpstream).toBe(false);
    });

    it('refuses a malformed and an unknown token with 401 invalid_token', async () => {
      for (const token of ['kw_pat_garbage', generateToken('kw_pat')]) {
        const { answer, reachedUpstream } = await reached(() => call(bearer(token)));
        expectProblem(answer, 401, 'unauthenticated');
        expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="keyward", error="invalid_token"/);
        expect(reachedUpstream).toBe(false);
      }
    });

    it('refuses a token without the scope with 403 insufficient_scope, naming the scope in the challenge', async () => {
      const { token } = await keyward.createToken({ scopes: ['clearances:read'] });
      const { answer, reachedUpstream } = await reached(() => call(bearer(token)));
      expectProblem(answer, 403, 'insufficient_scope');
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="keyward", error="insufficient_scope", scope="scans:read"');
      expect(reachedUpstream).toBe(false);
    });

    it('refuses a rate-limited token with 429 and Retry-After', async () => {
      const { token } = await keyward.createToken({ scopes: ['scans:read'], rateLimit: { limit: 1, windowSeconds: 60 } });
      expect((await call(bearer(token))).status).toBe(200);
      const { answer, reachedUpstream } = await reached(() => call(bearer(token)));
      expectProblem(answer, 429, 'rate_limited');
      expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(answer.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect(reachedUpstream).toBe(false);
    });

    it('refuses a token as soon as it is revoked', async () => {
      const { token, id } = await keyward.createToken({ scopes: ['scans:read'] });
      expect((await call(bearer(token))).status).toBe(200);
      await keyward.revoke(id);
      const { answer, reachedUpstream } = await reached(() => call(bearer(token)));
      expectProblem(answer, 401, 'unauthenticated');
      expect(answer.headers['www-authenticate']).toMatch(/error="invalid_token"/);
      expect(reachedUpstream).toBe(false);
    });

    it("judges an IP allowlist by the client's address through X-Forwarded-For, ignoring one the client forged", async () => {
      const { token } = await keyward.createToken({ scopes: ['scans:read'], allowedIps: ['127.0.0.2/32'] });
      expect((await call(bearer(token), '127.0.0.2')).status).toBe(200);
      expectProblem(await call(bearer(token), '127.0.0.1'), 403, 'forbidden');
      const elsewhere = await keyward.createToken({ scopes: ['scans:read'], allowedIps: ['10.0.0.0/8'] });
      expectProblem(await call({ ...bearer(elsewhere.token), 'x-forwarded-for': '10.1.2.3' }), 403, 'forbidden');
    });

    it('fails closed when Keyward cannot be reached: nothing reaches the upstream', async () => {
      const { token } = await keyward.createToken({ scopes: ['scans:read'] });
      keywardUp = false;
      await keyward.close();
      const { answer, reachedUpstream } = await reached(() => call(bearer(token)));
      expect(answer.status).toBe(gateway.unavailableStatus);
      expect(reachedUpstream).toBe(false);
    });
  });
}

describeGateway(nginx);
describeGateway(caddy);
