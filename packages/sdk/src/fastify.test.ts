import Fastify from 'fastify';
import { keyward, requireResource, requireScope } from './fastify.ts';
import { answerOf, describeMiddleware } from './testing/middleware-suite.ts';

describeMiddleware('@keyward/sdk/fastify', async (verifier) => {
  const app = Fastify();
  await app.register(keyward, { verifier });
  app.get('/scans', { preHandler: requireScope('scans:read') }, async (request) => ({ tokenId: request.keyward?.id }));
  app.get('/projects/:id', { preHandler: requireResource((request) => (request.params as { id: string }).id) }, async () => ({ ok: true }));
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    clientIp: '127.0.0.1',
    request: async (path, headers = {}) => answerOf(await fetch(`${baseUrl}${path}`, { headers })),
    close: () => app.close(),
  };
});
