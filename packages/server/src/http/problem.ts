// The one place errors become RFC 9457 problem details.
import { ForbiddenError, InsufficientScopeError, KeywardError, RateLimitedError, ServiceUnavailableError, UnauthenticatedError, ValidationError, type FieldError, type ProblemCode } from '@keyward/core';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  errors?: FieldError[];
  instance?: string;
}

export const STATUS: Record<ProblemCode, number> = {
  validation_failed: 400,
  unauthenticated: 401,
  forbidden: 403,
  insufficient_scope: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  service_unavailable: 503,
};

const TITLE: Record<ProblemCode, string> = {
  validation_failed: 'Validation failed',
  unauthenticated: 'Authentication required',
  forbidden: 'Forbidden',
  insufficient_scope: 'Insufficient scope',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  rate_limited: 'Too many requests',
  internal: 'Internal error',
  service_unavailable: 'Service unavailable',
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/**
 * The problem as it leaves the server: every field that can echo caller input
 * (a path, a scope name, an IP, a field name) has anything token-shaped
 * replaced, so an answer never repeats a secret someone pasted in the wrong place.
 */
export function scrubProblem(body: Problem, scrub: (text: string) => string): Problem {
  return {
    ...body,
    detail: scrub(body.detail),
    ...(body.errors ? { errors: body.errors.map((entry) => ({ field: scrub(entry.field), message: scrub(entry.message) })) } : {}),
    ...(body.instance !== undefined ? { instance: scrub(body.instance) } : {}),
  };
}

export function problem(code: ProblemCode, detail: string, extra: Partial<Problem> = {}): Problem {
  return { type: `urn:keyward:problem:${code}`, title: TITLE[code], status: STATUS[code], detail, code, ...extra };
}

/** Fastify's own errors (parsing, limits, media types) mapped to our codes. */
const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_INVALID_JSON_BODY: 'validation_failed',
  // A path segment over the router's limit: no id is that long, so it is bad input.
  FST_ERR_MAX_PARAM_LENGTH: 'validation_failed',
  FST_ERR_VALIDATION: 'validation_failed',
};

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: Array<{ instancePath?: string; message?: string; keyword?: string; params?: Record<string, unknown> }>;
  validationContext?: string;
}

interface FieldIssue extends FieldError {
  keyword: string | undefined;
  params: Record<string, unknown>;
}

/** One entry per offending field, named the way the client sent it. */
function fieldErrors(error: FastifyLikeError): FieldError[] {
  const issues: FieldIssue[] = (error.validation ?? []).flatMap((issue) => {
    const path = (issue.instancePath ?? '').replace(/^\//, '');
    const params = issue.params ?? {};
    const named = (names: unknown, message: string): FieldIssue[] =>
      ([] as unknown[]).concat(names).map((name) => ({ field: path ? `${path}/${String(name)}` : String(name), message, keyword: issue.keyword, params }));
    const extra = params.additionalProperties ?? params.additionalProperty;
    const missing = params.requiredProperties ?? params.missingProperty;
    if (issue.keyword === 'additionalProperties' && extra !== undefined) return named(extra, 'is not a known field');
    if (issue.keyword === 'required' && missing !== undefined) return named(missing, 'is required');
    return [{ field: path || (error.validationContext ?? 'body'), message: issue.message ?? 'is not valid', keyword: issue.keyword, params }];
  });
  const byField = new Map<string, FieldIssue[]>();
  for (const issue of issues) byField.set(issue.field, [...(byField.get(issue.field) ?? []), issue]);
  const fields = [...byField.keys()];
  return fields
    // A union's own complaints ("must be null") are noise once a branch named the exact sub-field.
    .filter((field) => !fields.some((other) => other.startsWith(`${field}/`)))
    .map((field) => ({ field, message: fieldMessage(byField.get(field) ?? []) }));
}

/** The validator reports an unknown field twice ("schema is false") and a union once per branch plus a summary. */
function fieldMessage(issues: FieldIssue[]): string {
  const specific = issues.filter((issue) => issue.keyword !== 'boolean' && issue.keyword !== 'anyOf');
  const chosen = specific.length > 0 ? specific : issues;
  if (chosen.length > 1 && chosen.every((issue) => issue.keyword === 'const')) return `must be one of ${chosen.map((issue) => String(issue.params.allowedValue)).join(', ')}`;
  if (chosen.length > 1 && chosen.every((issue) => issue.keyword === 'type')) return `must be ${chosen.map((issue) => String(issue.params.type)).join(' or ')}`;
  return chosen[0]?.message ?? 'is not valid';
}

export function toProblem(error: unknown): Problem {
  if (error instanceof ValidationError) return problem('validation_failed', error.message, { errors: error.errors });
  if (error instanceof KeywardError) return problem(error.code, error.message);
  const fastifyError = error as FastifyLikeError;
  const code = fastifyError?.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (fastifyError?.validation) {
    const errors = fieldErrors(fastifyError);
    return problem('validation_failed', errors.map((entry) => `${entry.field}: ${entry.message}`).join('; '), { errors });
  }
  if (code === 'validation_failed') return problem(code, fastifyError.message.replace(/^Body/, 'The request body'), { errors: [] });
  if (code) return problem(code, fastifyError.message);
  // Anything else is ours to fix: logged with the request id, described to no one.
  return problem('internal', 'Unexpected error.');
}

/**
 * An RFC 7235 quoted-string: `"` and backslash are backslash-escaped, control
 * characters (CR and LF included) dropped, so a message or scope name can
 * neither end the parameter early nor split the header. Anything beyond ASCII
 * becomes `?`: RFC 6750 allows only ASCII there, and Node refuses a header
 * with characters beyond Latin-1 outright (a 500).
 */
export function quotedString(value: string): string {
  // eslint-disable-next-line no-control-regex
  const printable = value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/[^\u0020-\u007e]/gu, '?');
  return `"${printable.replace(/["\\]/g, '\\$&')}"`;
}

/** RFC 6750 challenge for bearer-protected routes. */
export function wwwAuthenticate(error: unknown, usedBearer: boolean): string | null {
  if (error instanceof UnauthenticatedError) {
    return error.reason === 'invalid' ? `Bearer realm="keyward", error="invalid_token", error_description=${quotedString(error.message)}` : 'Bearer realm="keyward"';
  }
  if (error instanceof InsufficientScopeError) return `Bearer realm="keyward", error="insufficient_scope", scope=${quotedString(error.scope)}`;
  // A refusal to grant more than the token holds is, for its bearer, a token without enough privilege.
  if (error instanceof ForbiddenError && usedBearer) return 'Bearer realm="keyward", error="insufficient_scope"';
  return null;
}

/** Seconds a client should wait before retrying while a dependency is away: long enough to let it recover. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

export function retryAfter(error: unknown): number | null {
  if (error instanceof ServiceUnavailableError) return UNAVAILABLE_RETRY_AFTER_SECONDS;
  return error instanceof RateLimitedError ? error.retryAfterSeconds : null;
}
