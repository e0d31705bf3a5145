// The web console: the built single-page app of packages/console, served at
// `/`. Its hashed assets are static files; any other GET a browser navigates
// to (Accept: text/html) answers index.html, so client routes like /tokens
// survive a reload. API-style paths, and requests that do not ask for HTML,
// keep the usual problem+json 404/405. First-run setup (/setup) and invitation
// acceptance (/invite) are console pages too: their one-time token travels in
// the URL fragment, which never reaches the server.
import staticFiles from '@fastify/static';
import { ServiceUnavailableError } from '@keyward/core';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppContext } from '../app-types.ts';

/** Where `npm start` (and `npm install`) put the console build. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../../console/dist/', import.meta.url));
const ASSETS = 'console-assets';

/**
 * Stricter than the API's policy: scripts only from this origin (the build has
 * no inline script), and API calls only to it. Styles allow 'unsafe-inline'
 * because the dialog primitives set inline styles (positioning, scroll lock);
 * styles cannot run code.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

// Paths that belong to the server, never to the console's router.
const SERVER_PATHS = /^\/(api|oauth|docs|openapi\.json|healthz|readyz|metrics|console-assets|\.well-known)(\/|$)/;

function wantsConsolePage(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0] ?? '/';
  const accept = request.headers.accept ?? '';
  return !SERVER_PATHS.test(path) && accept.includes('text/html');
}

/** Answers a browser's navigation to a client route with the console page; false when the request is not one. */
export type ConsolePage = (request: FastifyRequest, reply: FastifyReply) => boolean;

/**
 * Whether the first owner may still be created here: this process holds a
 * setup token and nobody exists yet (another replica may have set Keyward up).
 */
async function isSetupOpen(ctx: AppContext): Promise<boolean> {
  return ctx.setup.token !== null && (await ctx.deps.store.countUsers()) === 0;
}

/**
 * Registers `/`, `/setup` and the hashed assets, and answers the fallback for
 * the not-found handler. The fallback is not a `/*` route: a wildcard would
 * catch every unmatched path first, hiding the router's own answers (405, an
 * over-long id) from the API.
 */
export async function consoleRoutes(app: App, ctx: AppContext, consoleDir: string = DEFAULT_CONSOLE_DIR): Promise<ConsolePage> {
  const open = { config: { auth: 'none' as const }, schema: { hide: true } };
  const indexFile = join(consoleDir, 'index.html');
  if (!existsSync(indexFile)) {
    const notBuilt = async () => {
      throw new ServiceUnavailableError('The web console is not built: run `npm run build -w packages/console` (npm start and npm install build it).');
    };
    app.get('/', open, notBuilt);
    app.get('/setup', open, notBuilt);
    return () => false;
  }
  const index = readFileSync(indexFile);
  await app.register(staticFiles, {
    root: join(consoleDir, ASSETS),
    prefix: `/${ASSETS}/`,
    wildcard: false,
    index: false,
    decorateReply: false,
    // Names carry a content hash: a changed file is a new URL.
    immutable: true,
    maxAge: '365d',
    setHeaders: (reply) => reply.header('content-security-policy', CONSOLE_CSP),
  });
  const send = (reply: FastifyReply) => reply.code(200).header('content-security-policy', CONSOLE_CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(index);
  app.get('/', open, async (_request, reply) => send(reply));
  // Once someone exists, the setup page has nothing to do: off to sign in. The
  // empty fragment keeps the browser from carrying the spent setup token along
  // to the new address (a redirect without one inherits the old fragment).
  app.get('/setup', open, async (_request, reply) => ((await isSetupOpen(ctx)) ? send(reply) : reply.redirect('/sign-in#', 303)));
  return (request, reply) => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || !wantsConsolePage(request)) return false;
    void send(reply);
    return true;
  };
}
