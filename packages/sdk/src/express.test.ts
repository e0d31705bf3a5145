import type { AddressInfo } from 'node:net';
import express from 'express';
import { keyward, requireResource, requireScope } from './express.ts';
import { answerOf, describeMiddleware } from './testing/middleware-suite.ts';

describeMiddleware('@keyward/sdk/express', async (verifier) => {
  const app = express();
  app.use(keyward({ verifier }));
  app.get('/scans', requireScope('scans:read'), (req, res) => {
    res.json({ tokenId: req.keyward?.id });
  });
  app.get(
    '/projects/:id',
    requireResource((req) => String(req.params.id)),
    (_req, res) => {
      res.json({ ok: true });
    },
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    clientIp: '127.0.0.1',
    request: async (path, headers = {}) => answerOf(await fetch(`${baseUrl}${path}`, { headers })),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
