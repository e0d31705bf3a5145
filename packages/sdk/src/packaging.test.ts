// The package as users get it: `npm pack`, installed from the tarball into a
// project outside the monorepo, run on the machine's Node.js 20 and on 24,
// where nothing strips TypeScript inside node_modules.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateToken } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKeywardServer, type KeywardTestServer } from './testing/keyward-server.ts';

const PACKAGE_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const TIMEOUT_MS = 300_000;

/** The machine's Node.js 20: the first `node` on PATH outside node_modules (npm puts the monorepo's Node 24 first). */
function findNode20(): string | undefined {
  const candidates = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir && !dir.includes('node_modules')).map((dir) => join(dir, 'node'));
  for (const candidate of [...candidates, '/usr/local/bin/node', '/usr/bin/node']) {
    if (!existsSync(candidate)) continue;
    const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
    if (version.startsWith('v20.')) return candidate;
  }
  return undefined;
}

// argv: a well-formed token, then a real server's URL and an owner token for the management client.
const CHECK_SCRIPT = `
import { createHmac } from 'node:crypto';
import { createKeywardClient, createVerifier, KeywardProblemError, KeywardUnavailableError, verifyWebhook } from '@keyward/sdk';
import * as express from '@keyward/sdk/express';
import * as fastify from '@keyward/sdk/fastify';
import * as hono from '@keyward/sdk/hono';

let fetches = 0;
const verifier = createVerifier({
  baseUrl: 'http://127.0.0.1:1',
  token: 'kw_svc_unused',
  events: false,
  fetch: async () => { fetches++; throw new Error('offline'); },
});
const malformed = await verifier.verify('not-a-token');
let failedClosed = false;
try {
  await verifier.verify(process.argv[2]);
} catch (error) {
  failedClosed = error instanceof KeywardUnavailableError;
}
await verifier.close();
const body = JSON.stringify({ id: 'wev_1', type: 'ping', createdAt: new Date().toISOString(), organizationId: 'org_1', data: {} });
const t = Math.floor(Date.now() / 1000);
const signature = 't=' + t + ',v1=' + createHmac('sha256', 'whsec_x').update(t + '.' + body).digest('hex');
const webhook = verifyWebhook(body, { 'keyward-signature': signature }, 'whsec_x').id;

const keyward = createKeywardClient({ baseUrl: process.argv[3], token: process.argv[4] });
const { data: created } = await keyward.POST('/api/v1/tokens', { body: { name: 'packaged-' + process.version, scopes: ['tokens:read'] } });
const { data: fetched } = await keyward.GET('/api/v1/tokens/{id}', { params: { path: { id: created.id } } });
await keyward.DELETE('/api/v1/tokens/{id}', { params: { path: { id: created.id } } });
let problem;
try {
  await keyward.GET('/api/v1/tokens/{id}', { params: { path: { id: 'tok_missing0000000000000' } } });
} catch (error) {
  problem = error instanceof KeywardProblemError ? { status: error.status, code: error.code } : String(error);
}
console.log(JSON.stringify({
  node: process.version,
  malformed,
  fetches,
  failedClosed,
  webhook,
  client: { secret: created.token.startsWith('kw_pat_'), sameToken: fetched.id === created.id, missing: problem },
  entries: [express.keyward, express.requireScope, express.requireResource, fastify.keyward, fastify.requireScope, fastify.requireResource, hono.keyward, hono.requireScope, hono.requireResource].map((f) => typeof f),
}));
`;

describe('the packed @keyward/sdk tarball', () => {
  let workDir: string;
  let project: string;
  let server: KeywardTestServer;

  beforeAll(async () => {
    server = await startKeywardServer();
    workDir = await mkdtemp(join(tmpdir(), 'keyward-sdk-pack-'));
    // prepack builds dist/ with tsc.
    execFileSync('npm', ['pack', '--pack-destination', workDir, '--silent'], { cwd: PACKAGE_DIR, stdio: 'pipe' });
    const tarball = readdirSync(workDir).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack made no tarball');
    project = join(workDir, 'project');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'keyward-sdk-consumer', private: true, type: 'module' }));
    await writeFile(join(project, 'check.mjs'), CHECK_SCRIPT);
    // Frameworks are optional peers; the fastify entry needs fastify-plugin at run time, the others only types.
    execFileSync('npm', ['install', join(workDir, tarball), 'fastify-plugin', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: project, stdio: 'pipe' });
  }, TIMEOUT_MS);
  afterAll(async () => {
    await server?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('ships compiled JavaScript and declarations only, and nothing of the server', () => {
    const installed = join(project, 'node_modules', '@keyward', 'sdk');
    const files: string[] = [];
    const walk = (dir: string, prefix = ''): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(join(dir, entry.name), `${prefix}${entry.name}/`);
        else files.push(`${prefix}${entry.name}`);
      }
    };
    walk(installed);
    expect(files).toContain('dist/sdk/src/index.js');
    expect(files).toContain('dist/sdk/src/index.d.ts');
    expect(files).toContain('dist/core/src/tokens/token-format.js');
    expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((file) => file.includes('server') || file.includes('.test.'))).toEqual([]);
  });

  // Asynchronous: the Keyward server the check calls runs in this process and must keep answering.
  async function runCheck(node: string): Promise<Record<string, unknown>> {
    const { stdout: output } = await promisify(execFile)(node, ['check.mjs', generateToken('kw_pat'), server.baseUrl, server.owner], { cwd: project, encoding: 'utf8' });
    return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
  }
  const expected = {
    malformed: { valid: false, code: 'MALFORMED' },
    fetches: 1,
    failedClosed: true,
    // The management client made real calls: created, read and revoked a token; a missing one was a typed 404.
    client: { secret: true, sameToken: true, missing: { status: 404, code: 'not_found' } },
    webhook: 'wev_1',
    entries: Array(9).fill('function'),
  };

  it('runs on the machine\'s Node.js 20', async () => {
    const node20 = findNode20();
    expect(node20, 'no Node.js 20 on PATH outside node_modules').toBeDefined();
    const result = await runCheck(node20!);
    expect(result.node).toMatch(/^v20\./);
    expect(result).toMatchObject(expected);
  }, TIMEOUT_MS);

  it("type-checks a consumer against the shipped declarations, with skipLibCheck off", async () => {
    const monorepo = dirname(dirname(PACKAGE_DIR));
    await writeFile(
      join(project, 'consumer.ts'),
      [
        "import { createKeywardClient, createVerifier, KeywardProblemError, KeywardUnavailableError, verifyWebhook, type KeywardSchemas, type KeywardWebhookEvent, type VerifyAnswer } from '@keyward/sdk';",
        "const verifier = createVerifier({ baseUrl: 'http://127.0.0.1:8080', token: 'kw_svc_…', cache: { ttlMs: 30_000 } });",
        "const answer: VerifyAnswer = await verifier.verify('kw_pat_…', { scopes: ['scans:read'] });",
        'const owner: string | undefined = answer.token?.owner.id;',
        'console.log(owner, answer.code === \'REVOKED\', KeywardUnavailableError.name);',
        "const event: KeywardWebhookEvent<{ token: { id: string } }> = verifyWebhook('{}', new Headers(), 'whsec_x', { toleranceSeconds: 60 });",
        'console.log(event.data.token.id);',
        "const keyward = createKeywardClient({ baseUrl: 'http://127.0.0.1:8080', token: 'kw_pat_…' });",
        "const { data } = await keyward.GET('/api/v1/tokens/{id}', { params: { path: { id: 'tok_…' } } });",
        "const token: KeywardSchemas['Token'] = data;",
        'const status: \'active\' | \'expired\' | \'revoked\' | \'disabled\' = token.status;',
        'console.log(status, KeywardProblemError.name);',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false,
          types: ['node'], typeRoots: [join(monorepo, 'node_modules', '@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(monorepo, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', join(project, 'tsconfig.json')], { cwd: project, stdio: 'pipe' });
  }, TIMEOUT_MS);

  it('runs on Node.js 24', async () => {
    const result = await runCheck(process.execPath);
    expect(result.node).toMatch(/^v24\./);
    expect(result).toMatchObject(expected);
  }, TIMEOUT_MS);
});
