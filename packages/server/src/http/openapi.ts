// OpenAPI 3.1 from the same TypeBox schemas that validate requests.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { ProblemResponse } from './schemas.ts';

export const API_VERSION = '1';

// Typed loosely on purpose: success shapes are declared per route, and the
// type provider must not narrow replies to the error shapes alone.
export const problemResponses: Record<number, unknown> = {
  400: ProblemResponse,
  401: ProblemResponse,
  403: ProblemResponse,
  404: ProblemResponse,
  409: ProblemResponse,
  429: ProblemResponse,
};

/** Management routes accept a bearer token or a console session. */
export function secured(): { security: Array<Record<string, string[]>> } {
  return { security: [{ bearerToken: [] }, { session: [] }] };
}

export async function registerOpenApi(app: FastifyInstance, options: { serverVersion: string; publicUrl: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Keyward API',
        version: options.serverVersion,
        description: 'Scoped, revocable API tokens for people and machines. Errors are RFC 9457 problem details (application/problem+json).',
      },
      servers: [{ url: options.publicUrl }],
      components: {
        securitySchemes: {
          bearerToken: { type: 'http', scheme: 'bearer', description: 'A Keyward token (kw_pat_… or kw_svc_…).' },
          session: { type: 'apiKey', in: 'cookie', name: 'keyward_session', description: 'Console session; state-changing requests also need X-CSRF-Token.' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { deepLinking: false } });
  app.get('/openapi.json', { config: { auth: 'none' }, schema: { hide: true } }, async () => app.swagger());
}
