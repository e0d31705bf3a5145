// The typed API client: openapi-fetch over the generated paths. The session
// cookie is HTTP-only and rides along by itself; the CSRF token and the chosen
// organization live in memory here (never in storage or URLs) and go out as headers.
import createClient, { type Middleware } from 'openapi-fetch';
// The same generated types as the SDK's management client (`npm run generate:client` keeps them current).
import type { paths } from '../../../sdk/src/client/api-types.ts';

type Json<P extends keyof paths, M extends 'get' | 'post' | 'patch', S extends number> = paths[P][M] extends { responses: { [K in S]: { content: { 'application/json': infer T } } } } ? T : never;
type Body<P extends keyof paths, M extends 'post' | 'patch'> = paths[P][M] extends { requestBody?: { content: { 'application/json': infer T } } } ? T : never;

export type Session = Json<'/api/v1/auth/session', 'get', 200>;
export type Organization = Session['organizations'][number];
export type Role = Organization['role'];
export type Token = Json<'/api/v1/tokens', 'get', 200>['items'][number];
export type TokenStatus = Token['status'];
export type CreateTokenInput = Body<'/api/v1/tokens', 'post'>;
export type UpdateTokenInput = Body<'/api/v1/tokens/{id}', 'patch'>;
export type Catalog = Json<'/api/v1/scopes', 'get', 200>;
export type Member = Json<'/api/v1/members', 'get', 200>['items'][number];
export type AuditEvent = Json<'/api/v1/audit', 'get', 200>['items'][number];
export type Client = Json<'/api/v1/clients', 'get', 200>['items'][number];
export type Usage = Json<'/api/v1/usage', 'get', 200>;
export type Resource = Json<'/api/v1/resources', 'get', 200>['items'][number];
/** A resource as a token lists it. */
export type ResourceRef = Token['resources'][number];

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const headers = { csrfToken: null as string | null, organizationId: null as string | null };

/** Remembers the session's CSRF token (from sign-in or GET /auth/session); null on sign-out. */
export function setCsrfToken(token: string | null): void {
  headers.csrfToken = token;
}

export function setOrganization(organizationId: string | null): void {
  headers.organizationId = organizationId;
}

const sessionHeaders: Middleware = {
  onRequest({ request }) {
    if (headers.organizationId) request.headers.set('X-Keyward-Organization', headers.organizationId);
    if (!SAFE_METHODS.has(request.method) && headers.csrfToken) request.headers.set('X-CSRF-Token', headers.csrfToken);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin, credentials: 'same-origin' });
api.use(sessionHeaders);

export interface FieldError {
  field: string;
  message: string;
}

/** An RFC 9457 answer, thrown so TanStack Query sees a failure. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors: FieldError[];
  constructor(status: number, body: { detail?: string; code?: string; errors?: FieldError[] } | undefined) {
    super(body?.detail ?? `The server answered ${status}.`);
    this.status = status;
    this.code = body?.code ?? 'internal';
    this.errors = body?.errors ?? [];
  }

  /** The message for one form field, matching `name`, `/name` and `name/0`. */
  fieldMessage(field: string): string | undefined {
    const found = this.errors.find((error) => error.field.replace(/^\//, '').split('/')[0] === field);
    return found?.message;
  }
}

/** The data of an openapi-fetch answer, or its problem thrown. */
export function unwrap<T>(answer: { data?: T; error?: unknown; response: Response }): T {
  if (!answer.response.ok) throw new ApiProblem(answer.response.status, answer.error as ConstructorParameters<typeof ApiProblem>[1]);
  return answer.data as T;
}
