// Builds dist/ with tsc from a clean slate, and fails if the compiled SDK
// reaches beyond itself and the pure core modules (never the server).
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}
for (const file of files(dist)) {
  const top = relative(dist, file).split(/[\\/]/)[0];
  if (top !== 'sdk' && top !== 'core') throw new Error(`unexpected file in dist: ${relative(dist, file)}`);
}
