// Vite builds the console into dist/, which the Keyward server serves at `/`.
// `npm run dev -w packages/console` serves it with hot reload and sends API
// calls to a Keyward server on :8080 (KEYWARD_DEV_API to change), so the
// session cookie stays same-origin.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const api = process.env.KEYWARD_DEV_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Own folder, so the built files never collide with the server's /assets/pages.*.
    assetsDir: 'console-assets',
    sourcemap: false,
    // The main chunk (React, Router, Query, Radix) is ~500 kB, ~157 kB gzipped; the chart loads with its pages.
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: Object.fromEntries(['/api', '/openapi.json', '/docs', '/healthz', '/readyz'].map((path) => [path, { target: api, changeOrigin: false }])),
  },
});
