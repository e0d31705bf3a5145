import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVER_NODE_FLAGS } from './node-flags.ts';

const root = path.join(import.meta.dirname, '..', '..', '..');
const flags = SERVER_NODE_FLAGS.join(' ');

describe('SERVER_NODE_FLAGS', () => {
  it('are the flags of the root start and keyward scripts, of the install’s compile-cache warm-up, and of the bench, whose servers run in its process', () => {
    const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toContain(`node ${flags} packages/cli/bin/keyward.js serve`);
    expect(scripts.keyward).toBe(`node ${flags} packages/cli/bin/keyward.js`);
    expect(scripts.bench).toBe(`node ${flags} scripts/bench.ts`);
    // Node keys its compile cache by the V8 flags that change compiled code: the install's warm-up runs with the server's.
    expect(scripts.prepare).toContain(`node ${flags} packages/cli/bin/warm-compile-cache.js`);
  });

  it('are the flags of the keyward command’s shebang', () => {
    const firstLine = readFileSync(path.join(import.meta.dirname, '..', 'bin', 'keyward.js'), 'utf8').split('\n')[0];
    expect(firstLine).toBe(`#!/usr/bin/env -S node ${flags}`);
  });
});
