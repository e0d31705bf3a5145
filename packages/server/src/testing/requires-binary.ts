// Suites that run a real binary (nginx, Caddy): where it is missing they are
// skipped with the reason and the install command, except in CI (CI=true),
// where .ci/run installs it and its absence is a failure, not a skip.
import { describe, expect, it } from 'vitest';

/** `describe(title, body)` when `binary` was found; otherwise a skip (or, in CI, a failing test) saying how to install it. */
export function describeWithBinary(binary: string | undefined, debianPackage: string, title: string, body: () => void): void {
  if (binary) {
    describe(title, body);
    return;
  }
  const install = `apt-get install -y ${debianPackage}`;
  if (process.env.CI === 'true') {
    describe(title, () => {
      it(`finds the ${debianPackage} binary, which CI installs`, () => {
        expect.fail(`no ${debianPackage} binary on PATH or in /usr/sbin, /usr/bin, /usr/local: .ci/run should have run \`${install}\``);
      });
    });
  } else {
    console.warn(`Skipping "${title}": no ${debianPackage} binary (\`${install}\` to run it).`);
    describe.skip(`${title} (skipped: no ${debianPackage} binary; \`${install}\` to run it)`, () => {
      it('is skipped', () => {});
    });
  }
}
