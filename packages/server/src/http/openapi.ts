// OpenAPI 3.1 from the same TypeBox schemas that validate requests, shaped for
// client generators: every operation has an operationId and tags, shared
// shapes are named under components/schemas, errors are problem details.
import { readFileSync } from 'node:fs';
import swagger, { type SwaggerTransform, type SwaggerTransformObject } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { OPERATION_EXAMPLES } from './openapi-examples.ts';
import { namedSchemas, ProblemResponse } from './schemas.ts';

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

/** The document's tags: every operation's tags must be among them (openapi.test.ts checks). */
export const TAGS = [
  { name: 'Tokens', description: 'Personal tokens: create, list, change, rotate and revoke; introspect or revoke the token making the call; report leaked tokens.' },
  { name: 'Secret scanning', description: 'For secret-scanning partners (code hosts, CI log scanners): report leaked Keyward tokens, signed with your partner secret instead of a Keyward token.' },
  { name: 'Scopes', description: "The deployment's scope catalog and presets, for building a create-token form." },
  { name: 'Clients', description: 'API clients (machines) and their service tokens. Needs clients:manage and the admin level.' },
  { name: 'Members', description: 'People in the organization, their roles and resources, and invitations. Needs members:manage and the admin level.' },
  { name: 'Resources', description: 'The things tokens and members can be limited to (projects, sites, clearance groups…).' },
  { name: 'Organization', description: 'The organization of the request and its token policy; creating organizations.' },
  { name: 'Webhooks', description: 'Signed HTTP callbacks for token and member events, with their delivery log. Needs members:manage and the admin level.' },
  { name: 'Audit', description: 'The audit log: every change and every sign-in, newest first.' },
  { name: 'Verification', description: 'For resource servers and gateways: verify a token (JSON), introspect it (RFC 7662) or forward-auth a request. Needs keyward:verify, except forward-auth.' },
  { name: 'Events', description: 'Server-Sent Events that tell verifiers which cached answers to drop.' },
  { name: 'Usage', description: 'Verification counts per time bucket and outcome code.' },
  { name: 'Auth', description: 'Console sessions (HTTP-only cookie plus X-CSRF-Token), invitations and first-run setup.' },
  { name: 'System', description: 'Version, liveness, readiness and Prometheus metrics; no credentials needed.' },
];

const integerHeader = (description: string) => ({ description, schema: { type: 'integer', minimum: 0 } });
const RETRY_AFTER = { 'Retry-After': integerHeader('Seconds to wait before trying again.') };

/** The problem answers every operation shares, declared once under components/responses, by status. */
const PROBLEMS: Record<string, { name: string; description: string; headers?: Record<string, unknown> }> = {
  400: { name: 'ValidationFailed', description: 'validation_failed: the request is not valid; `errors` names each field.' },
  401: {
    name: 'Unauthenticated',
    description: 'unauthenticated: no credentials, or a token that is invalid, expired, revoked or disabled.',
    headers: { 'WWW-Authenticate': { description: 'A Bearer challenge (RFC 6750), with error="invalid_token" for a token that was presented.', schema: { type: 'string' } } },
  },
  403: { name: 'Forbidden', description: 'forbidden or insufficient_scope: the caller may not do this, or may not grant that much.' },
  404: { name: 'NotFound', description: 'not_found: missing, or not yours (the two answer alike).' },
  409: { name: 'Conflict', description: 'conflict: the current state does not allow it (name taken, token already revoked, last owner...).' },
  413: { name: 'PayloadTooLarge', description: 'payload_too_large: the body is over the size limit.' },
  415: { name: 'UnsupportedMediaType', description: 'unsupported_media_type: send application/json.' },
  429: {
    name: 'RateLimited',
    description: 'rate_limited: too many requests; wait Retry-After seconds.',
    headers: {
      ...RETRY_AFTER,
      'RateLimit-Limit': integerHeader('The allowance of the window that refused the request, when it was a token or client limit.'),
      'RateLimit-Remaining': integerHeader('What is left of it (0).'),
      'RateLimit-Reset': integerHeader('Seconds until the window resets.'),
    },
  },
  500: { name: 'Internal', description: 'internal: an unexpected error, logged with the request id; no details are given.' },
  503: { name: 'ServiceUnavailable', description: 'service_unavailable: a dependency (the database) is not answering; retry later.', headers: RETRY_AFTER },
};

const SUCCESS_DESCRIPTIONS: Record<string, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted' };

type Schema = { $id?: unknown; description?: unknown; type?: unknown; content?: unknown } | undefined;

/** A named schema becomes a reference to its components/schemas entry; any other stays inline. */
function refOrInline(schema: unknown, names: ReadonlySet<string>): unknown {
  const id = (schema as Schema)?.$id;
  return typeof id === 'string' && names.has(id) ? { $ref: `#/components/schemas/${id}` } : schema;
}

/**
 * Documentation only: error answers are application/problem+json, every
 * operation lists the problems any route can answer, protected routes say
 * which scopes they need, public ones say they need nothing, and named
 * schemas are referred to. Validation and serialization keep using the
 * route's own schemas.
 */
function documentRoute(names: ReadonlySet<string>): SwaggerTransform {
  return ({ schema, url, route }) => {
    if (!schema) return { schema, url };
    const responses: Record<string, unknown> = { ...((schema.response as Record<string, unknown> | undefined) ?? {}) };
    const config = route.config as { auth?: string; scopes?: string[]; minRole?: string } | undefined;
    if (url.startsWith('/api/v1/')) {
      for (const code of ['413', '415', '500']) responses[code] ??= ProblemResponse;
    }
    for (const [code, body] of Object.entries(responses)) {
      const shape = body as Schema;
      if (shape?.content) continue;
      if (Number(code) >= 400) {
        responses[code] = { description: PROBLEMS[code]?.description ?? 'Problem details (RFC 9457).', content: { 'application/problem+json': { schema: refOrInline(body, names) } } };
      } else if (shape?.type !== 'null') {
        const description = typeof shape?.description === 'string' ? shape.description : (SUCCESS_DESCRIPTIONS[code] ?? 'Success');
        responses[code] = { description, content: { 'application/json': { schema: refOrInline(body, names) } } };
      }
    }
    const scopes = config?.scopes;
    const needs = scopes === undefined ? '' : scopes.length === 0 ? 'Needs any valid credential (no scope).' : `Needs scope ${scopes.join(' or ')} (a console session holds every scope its role grants).`;
    const level = config?.minRole ? `Needs at least the ${config.minRole} permission level (a token's effective permission, or a session's role).` : '';
    const description = [(schema as { description?: string }).description, needs, level].filter(Boolean).join('\n\n');
    const body = schema.body === undefined ? {} : { body: refOrInline(schema.body, names) };
    // Public operations say so, rather than inheriting nothing: an empty list means "no credentials".
    const security = config?.auth === 'none' && !('security' in schema) ? { security: [] } : {};
    return { schema: { ...schema, ...body, ...security, response: responses, ...(description ? { description } : {}) }, url };
  };
}

interface MediaObject {
  schema?: { $ref?: string };
  examples?: unknown;
}
interface ResponseObject {
  description?: string;
  content?: Record<string, MediaObject>;
}
interface OperationObject {
  operationId?: string;
  requestBody?: { required?: boolean; content?: Record<string, MediaObject> };
  responses?: Record<string, ResponseObject | { $ref: string }>;
}

const isStandardProblem = (code: string, response: ResponseObject) =>
  response.description === PROBLEMS[code]?.description && response.content?.['application/problem+json']?.schema?.$ref === '#/components/schemas/Problem';

/**
 * The finished document: standard problem answers become references to
 * components/responses (with their headers), a body that may be null is
 * optional (Fastify's plugin marks every body required), and the examples of
 * openapi-examples.ts join their operations, by operationId.
 */
const finishDocument: SwaggerTransformObject = (document) => {
  if (!('openapiObject' in document)) throw new Error('Keyward documents OpenAPI 3 only.');
  const { openapiObject } = document;
  const shared: Record<string, unknown> = {};
  for (const { name, description, headers } of Object.values(PROBLEMS)) {
    shared[name] = { description, ...(headers ? { headers } : {}), content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
  }
  openapiObject.components = { ...openapiObject.components, responses: shared as never };
  for (const item of Object.values(openapiObject.paths ?? {})) {
    for (const operation of Object.values(item as Record<string, OperationObject>)) {
      const responses = operation.responses ?? {};
      for (const [code, response] of Object.entries(responses)) {
        if (isStandardProblem(code, response as ResponseObject)) responses[code] = { $ref: `#/components/responses/${PROBLEMS[code]!.name}` };
      }
      const bodySchema = Object.values(operation.requestBody?.content ?? {})[0]?.schema;
      const named = bodySchema?.$ref?.replace('#/components/schemas/', '');
      const variants = (named ? (openapiObject.components?.schemas?.[named] as { anyOf?: Array<{ type?: unknown }> } | undefined) : undefined)?.anyOf;
      if (operation.requestBody && variants?.some((variant) => variant.type === 'null')) operation.requestBody.required = false;
      const examples = operation.operationId ? OPERATION_EXAMPLES[operation.operationId] : undefined;
      if (!examples) continue;
      const request = examples.request && Object.values(operation.requestBody?.content ?? {})[0];
      if (request) request.examples = examples.request;
      for (const [code, byName] of Object.entries(examples.responses ?? {})) {
        const media = Object.values((responses[code] as ResponseObject | undefined)?.content ?? {})[0];
        if (!media) throw new Error(`openapi-examples.ts: ${operation.operationId} has no ${code} answer with a body to give examples to.`);
        media.examples = byName;
      }
    }
  }
  return openapiObject;
};

/** Keyward's mark, for the reference page. */
const LOGO_SVG = readFileSync(new URL('./pages/keyward-mark.svg', import.meta.url));
const DOCS_CSS = readFileSync(new URL('./pages/docs.css', import.meta.url), 'utf8');

export async function registerOpenApi(app: FastifyInstance, options: { serverVersion: string; publicUrl: string }): Promise<void> {
  const components = namedSchemas();
  await app.register(swagger, {
    transform: documentRoute(new Set(Object.keys(components))),
    transformObject: finishDocument,
    // Schemas with an $id nested in a route's schema are listed once under their own name.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Keyward API',
        version: options.serverVersion,
        description:
          'Scoped, revocable API tokens for people and machines. Errors are RFC 9457 problem details (application/problem+json). ' +
          'Management calls take a bearer token (`Authorization: Bearer kw_pat_…`) or a console session.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: options.publicUrl, description: 'This Keyward server' }],
      tags: TAGS,
      components: {
        schemas: components as never,
        securitySchemes: {
          bearerToken: { type: 'http', scheme: 'bearer', description: 'A Keyward token (kw_pat_… or kw_svc_…).' },
          session: { type: 'apiKey', in: 'cookie', name: 'keyward_session', description: 'Console session; state-changing requests also need X-CSRF-Token.' },
        },
      },
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // The server's own Content-Security-Policy applies (security.ts): the page runs same-origin scripts only.
    staticCSP: false,
    theme: {
      title: 'Keyward API reference',
      css: [{ filename: 'keyward.css', content: DOCS_CSS }],
      favicon: [{ filename: 'keyward.svg', rel: 'icon', sizes: 'any', type: 'image/svg+xml', content: LOGO_SVG }],
    },
    uiConfig: {
      // No top bar (the framework's logo and a URL box): the page opens on the API's own title.
      layout: 'BaseLayout',
      deepLinking: false,
      // The bearer token typed into Authorize stays in this page's memory, never in localStorage.
      persistAuthorization: false,
      tryItOutEnabled: true,
      displayOperationId: true,
      defaultModelsExpandDepth: 0,
    },
    // No badge fetched from a third-party validator.
    validatorUrl: false,
    // Requests go to the server that served the page, whatever KEYWARD_PUBLIC_URL says: the CSP allows only its own origin.
    transformSpecification: (document) => ({ ...document, servers: [{ url: '/', description: 'This Keyward server' }] }),
  });
  app.get('/openapi.json', { config: { auth: 'none' }, schema: { hide: true } }, async () => app.swagger());
}
