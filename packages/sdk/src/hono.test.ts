import { Hono } from 'hono';
import { keyward, requireResource, requireScope, type KeywardEnv } from './hono.ts';
import { answerOf, describeMiddleware } from './testing/middleware-suite.ts';

describeMiddleware('@keyward/sdk/hono', async (verifier) => {
  const app = new Hono<KeywardEnv>();
  app.use(keyward({ verifier }));
  app.get('/scans', requireScope('scans:read'), (c) => c.json({ tokenId: c.get('keyward').id }));
  app.get('/projects/:id', requireResource((c) => c.req.param('id')), (c) => c.json({ ok: true }));
  return {
    request: async (path, headers = {}) => answerOf(await app.request(path, { headers })),
    close: async () => {},
  };
});
