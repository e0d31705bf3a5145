// The two pages Keyward serves before the console exists: first-run setup and
// invite acceptance. Plain HTML with an external script (the CSP allows no inline code).
import { readFileSync } from 'node:fs';
import type { App } from '../app-types.ts';

const read = (name: string) => readFileSync(new URL(`../pages/${name}`, import.meta.url), 'utf8');

export async function pageRoutes(app: App): Promise<void> {
  const pages = { setup: read('setup.html'), invite: read('invite.html'), js: read('pages.js'), css: read('pages.css') };
  const open = { config: { auth: 'none' as const }, schema: { hide: true } };
  app.get('/setup', open, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(pages.setup));
  app.get('/invite', open, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(pages.invite));
  app.get('/assets/pages.js', open, async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(pages.js));
  app.get('/assets/pages.css', open, async (_request, reply) => reply.type('text/css; charset=utf-8').send(pages.css));
}
