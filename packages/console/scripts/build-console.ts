// Builds the console when dist/ is missing or older than its sources. The
// stamp is a SHA-256 over every source file's path and bytes (and the
// lockfile, for dependency upgrades), so `npm start` and `npm install` rebuild
// exactly when something changed. Run directly with --force to always build.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONSOLE_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CONSOLE_DIST = join(CONSOLE_ROOT, 'dist');
const STAMP_FILE = join(CONSOLE_DIST, '.build-stamp');
const INPUTS = ['src', 'index.html', 'vite.config.ts', 'package.json', '../../package-lock.json'];

async function filesUnder(path: string): Promise<string[]> {
  if (!existsSync(path)) return [];
  const entries = await readdir(path, { withFileTypes: true, recursive: true }).catch(() => null);
  if (entries === null) return [path];
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** The fingerprint of the console's sources, as written in the build's stamp. */
export async function sourceFingerprint(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await Promise.all(INPUTS.map((input) => filesUnder(join(CONSOLE_ROOT, input))))).flat().sort();
  for (const file of files) {
    hash.update(relative(CONSOLE_ROOT, file)).update('\0').update(await readFile(file)).update('\0');
  }
  return hash.digest('hex');
}

export async function isConsoleBuildCurrent(): Promise<boolean> {
  const stamp = await readFile(STAMP_FILE, 'utf8').catch(() => null);
  return stamp !== null && existsSync(join(CONSOLE_DIST, 'index.html')) && stamp.trim() === (await sourceFingerprint());
}

/** Builds dist/ unless its stamp matches the sources; answers whether it built. */
export async function ensureConsoleBuilt(options: { force?: boolean; quiet?: boolean } = {}): Promise<boolean> {
  if (!options.force && (await isConsoleBuildCurrent())) return false;
  const fingerprint = await sourceFingerprint();
  // Imported here, so a current build costs no Vite start-up.
  const { build } = await import('vite');
  await build({ root: CONSOLE_ROOT, configFile: join(CONSOLE_ROOT, 'vite.config.ts'), logLevel: options.quiet ? 'warn' : 'info' });
  await writeFile(STAMP_FILE, `${fingerprint}\n`);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const built = await ensureConsoleBuilt({ force: process.argv.includes('--force') });
  if (!built) console.log('keyward console: the build in packages/console/dist is current');
}
