import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Workspace packages import @keyward/sdk by name from its TypeScript source
  // (see its package.json `exports`); published, it resolves to dist/. The
  // rest are Vite's default conditions for Node.
  ssr: { resolve: { conditions: ['keyward-source', 'module', 'node', 'development|production'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/**/*.test.ts', 'scripts/**/*.test.ts'],
    // Default output for people, plus one plain "N passed, N failed" closing line for CI.
    reporters: ['default', './scripts/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Storage tests each open their own database; two workers suit the 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
