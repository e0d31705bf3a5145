// OpenAPI 3.1 from the same TypeBox schemas that validate requests.
import swagger, { type SwaggerTransform } from '@fastify/swagger';
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

const PROBLEM_DESCRIPTIONS: Record<string, string> = {
  400: 'validation_failed: the request is not valid; `errors` names each field.',
  401: 'unauthenticated: no credentials, or a token that is invalid, expired, revoked or disabled.',
  403: 'forbidden or insufficient_scope: the caller may not do this, or may not grant that much.',
  404: 'not_found: missing, or not yours (the two answer alike).',
  409: 'conflict: the current state does not allow it (name taken, token already revoked, last owner...).',
  413: 'payload_too_large',
  415: 'unsupported_media_type: send application/json.',
  429: 'rate_limited: see Retry-After.',
  500: 'internal: an unexpected error, logged with the request id; no details are given.',
};

/**
 * Documentation only: error answers are application/problem+json, every
 * operation lists the problems any route can answer, and protected routes say
 * which scopes they need. Serialization keeps using the route's own schemas.
 */
const documentRoute: SwaggerTransform = ({ schema, url, route }) => {
  if (!schema) return { schema, url };
  const responses: Record<string, unknown> = { ...((schema.response as Record<string, unknown> | undefined) ?? {}) };
  const config = route.config as { scopes?: string[]; minRole?: string } | undefined;
  if (url.startsWith('/api/v1/')) {
    for (const code of ['413', '415', '500']) responses[code] ??= ProblemResponse;
  }
  for (const [code, body] of Object.entries(responses)) {
    if (Number(code) >= 400 && !(body as { content?: unknown } | undefined)?.content) {
      responses[code] = { description: PROBLEM_DESCRIPTIONS[code] ?? 'Problem details (RFC 9457).', content: { 'application/problem+json': { schema: body } } };
    }
  }
  const scopes = config?.scopes;
  const needs = scopes === undefined ? '' : scopes.length === 0 ? 'Needs any valid credential (no scope).' : `Needs scope ${scopes.join(' or ')} (a console session holds every scope its role grants).`;
  const level = config?.minRole ? `Needs at least the ${config.minRole} permission level (a token's effective permission, or a session's role).` : '';
  const description = [(schema as { description?: string }).description, needs, level].filter(Boolean).join('\n\n');
  return { schema: { ...schema, response: responses, ...(description ? { description } : {}) }, url };
};

export async function registerOpenApi(app: FastifyInstance, options: { serverVersion: string; publicUrl: string }): Promise<void> {
  await app.register(swagger, {
    transform: documentRoute,
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
