// The package as users get it: `npm pack`, installed from the tarball into a
// project outside the monorepo, run on the machine's Node.js 20 and on 24,
// where nothing strips TypeScript inside node_modules.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateToken } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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

const CHECK_SCRIPT = `
import { createHmac } from 'node:crypto';
import { createVerifier, KeywardUnavailableError, verifyWebhook } from '@keyward/sdk';
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
console.log(JSON.stringify({
  node: process.version,
  malformed,
  fetches,
  failedClosed,
  webhook,
  entries: [express.keyward, express.requireScope, express.requireResource, fastify.keyward, fastify.requireScope, fastify.requireResource, hono.keyward, hono.requireScope, hono.requireResource].map((f) => typeof f),
}));
`;

describe('the packed @keyward/sdk tarball', () => {
  let workDir: string;
  let project: string;

  beforeAll(async () => {
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

  function runCheck(node: string): Record<string, unknown> {
    const output = execFileSync(node, ['check.mjs', generateToken('kw_pat')], { cwd: project, encoding: 'utf8' });
    return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
  }
  const expected = { malformed: { valid: false, code: 'MALFORMED' }, fetches: 1, failedClosed: true, webhook: 'wev_1', entries: Array(9).fill('function') };

  it('runs on the machine\'s Node.js 20', () => {
    const node20 = findNode20();
    expect(node20, 'no Node.js 20 on PATH outside node_modules').toBeDefined();
    const result = runCheck(node20!);
    expect(result.node).toMatch(/^v20\./);
    expect(result).toMatchObject(expected);
  }, TIMEOUT_MS);

  it("type-checks a consumer against the shipped declarations, with skipLibCheck off", async () => {
    const monorepo = dirname(dirname(PACKAGE_DIR));
    await writeFile(
      join(project, 'consumer.ts'),
      [
        "import { createVerifier, KeywardUnavailableError, verifyWebhook, type KeywardWebhookEvent, type VerifyAnswer } from '@keyward/sdk';",
        "const verifier = createVerifier({ baseUrl: 'http://127.0.0.1:8080', token: 'kw_svc_…', cache: { ttlMs: 30_000 } });",
        "const answer: VerifyAnswer = await verifier.verify('kw_pat_…', { scopes: ['scans:read'] });",
        'const owner: string | undefined = answer.token?.owner.id;',
        'console.log(owner, answer.code === \'REVOKED\', KeywardUnavailableError.name);',
        "const event: KeywardWebhookEvent<{ token: { id: string } }> = verifyWebhook('{}', new Headers(), 'whsec_x', { toleranceSeconds: 60 });",
        'console.log(event.data.token.id);',
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

  it('runs on Node.js 24', () => {
    const result = runCheck(process.execPath);
    expect(result.node).toMatch(/^v24\./);
    expect(result).toMatchObject(expected);
  }, TIMEOUT_MS);
});
