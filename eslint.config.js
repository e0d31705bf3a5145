// Flat config: typescript-eslint's recommended rules on every package.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'data/**', '**/dist/**', 'coverage/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // The command's entries are plain JavaScript modules run by Node (they turn on the compile cache before any TypeScript loads).
    files: ['packages/cli/bin/*.js'],
    languageOptions: { sourceType: 'module', globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The first-run pages' script runs in the browser.
    files: ['packages/server/src/http/pages/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', location: 'readonly', history: 'readonly', fetch: 'readonly', FormData: 'readonly' },
    },
  },
  {
    // Layering: the SDK ships to users' projects, so its code reaches neither
    // the server nor core's barrel (which would pull in every domain module);
    // it may compile in pure core modules by relative path. Its tests may
    // start a real server.
    files: ['packages/sdk/src/**/*.ts'],
    ignores: ['packages/sdk/src/**/*.test.ts', 'packages/sdk/src/testing/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [
          { name: '@keyward/server', message: 'The SDK must not depend on the server.' },
          { name: '@keyward/core', message: 'Import the pure core module by relative path, so the build compiles it into dist.' },
        ],
        patterns: [{ group: ['**/server/**', '**/server/src/**'], message: 'The SDK must not depend on the server.' }],
      }],
    },
  },
  {
    // The core is the bottom layer: it knows neither the server nor the SDK.
    files: ['packages/core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [
          { name: '@keyward/server', message: 'The core must not depend on the server.' },
          { name: '@keyward/sdk', message: 'The core must not depend on the SDK.' },
        ],
        patterns: [{ group: ['@keyward/sdk/*', '**/server/src/**', '**/sdk/src/**'], message: 'The core must not depend on the server or the SDK.' }],
      }],
    },
  },
  {
    // Tests read JSON answers loosely; the assertions check the shapes.
    files: ['**/*.test.ts', '**/testing/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
