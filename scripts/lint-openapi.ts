// npm run lint:openapi: writes the document a Keyward server serves at
// /openapi.json to a temporary file and lints it with Redocly CLI
// (redocly.yaml: the recommended ruleset). Fails on any error; prints the
// warnings. Offline: no telemetry, no update check.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOpenApiDocument } from './openapi-document.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const redocly = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');

const dir = await mkdtemp(path.join(tmpdir(), 'keyward-openapi-lint-'));
try {
  const file = path.join(dir, 'openapi.json');
  await writeFile(file, `${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`);
  const result = spawnSync(process.execPath, [redocly, 'lint', file, '--config', path.join(root, 'redocly.yaml'), '--format', 'stylish'], {
    stdio: 'inherit',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true' },
  });
  process.exitCode = result.status ?? 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
