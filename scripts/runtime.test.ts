import { describe, expect, it } from 'vitest';

describe('the runtime', () => {
  it('is Node.js 24 from the node@24 devDependency, not the machine fallback', () => {
    expect(Number(process.versions.node.split('.')[0])).toBe(24);
  });
});
