// Domain errors carry a stable problem code; only the server maps them to HTTP.
export type ProblemCode =
  | 'validation_failed'
  | 'unauthenticated'
  | 'forbidden'
  | 'insufficient_scope'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'method_not_allowed'
  | 'service_unavailable'
  | 'internal';

export interface FieldError {
  /** JSON pointer-ish path of the field, e.g. `scopes/1` or `name`. */
  field: string;
  message: string;
}

export abstract class KeywardError extends Error {
  abstract readonly code: ProblemCode;
}

export class ValidationError extends KeywardError {
  readonly code = 'validation_failed';
  readonly errors: FieldError[];
  constructor(errors: FieldError[], message = 'The request is not valid.') {
    super(message);
    this.errors = errors;
  }
  static field(field: string, message: string): ValidationError {
    return new ValidationError([{ field, message }], `${field}: ${message}`);
  }
}

/**
 * Why a request was not authenticated: no credentials (`missing`), a bearer
 * token refused (`invalid`, answered as RFC 6750 invalid_token), or a wrong
 * email or password (`credentials`: no token was involved).
 */
export type UnauthenticatedReason = 'missing' | 'invalid' | 'credentials';

export class UnauthenticatedError extends KeywardError {
  readonly code = 'unauthenticated';
  readonly reason: UnauthenticatedReason;
  constructor(message = 'Authentication is required.', reason: UnauthenticatedReason = 'missing') {
    super(message);
    this.reason = reason;
  }
}

export class ForbiddenError extends KeywardError {
  readonly code = 'forbidden';
}

export class InsufficientScopeError extends KeywardError {
  readonly code = 'insufficient_scope';
  readonly scope: string;
  constructor(scope: string) {
    super(`This action needs the ${scope} scope.`);
    this.scope = scope;
  }
}

export class NotFoundError extends KeywardError {
  readonly code = 'not_found';
  constructor(entity: string) {
    super(`No such ${entity}.`);
  }
}

export class ConflictError extends KeywardError {
  readonly code = 'conflict';
}

/** One rate-limit window as the IETF RateLimit header fields describe it. */
export interface RateLimitWindow {
  /** The window's allowance. */
  limit: number;
  /** What is left of it (0 when refused). */
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

export class RateLimitedError extends KeywardError {
  readonly code = 'rate_limited';
  readonly retryAfterSeconds: number;
  /** The window that refused, for RateLimit-* headers; null when there is none to tell. */
  readonly window: RateLimitWindow | null;
  constructor(retryAfterSeconds: number, message = 'Too many attempts; try again later.', window: RateLimitWindow | null = null) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
    this.window = window;
  }
}

export class ServiceUnavailableError extends KeywardError {
  readonly code = 'service_unavailable';
}
