// The verifier's typed errors. A refused token is never an error (it is an
// answer); these mean the question could not be answered at all.

/**
 * Keyward could not be asked: network failure, timeout, a 5xx, or the
 * verifier's own credential refused (401/403/429). Fail closed: treat the
 * request as unauthenticated-for-now (the middleware answers 503).
 *
 * @example
 * try { await verifier.verify(presented); } catch (error) { if (error instanceof KeywardUnavailableError) … }
 */
export class KeywardUnavailableError extends Error {
  override readonly name = 'KeywardUnavailableError';
  /** The HTTP status Keyward answered, when it answered at all. */
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
  }
}

/** Keyward refused the question itself (400), e.g. a malformed `require` expression or scope name: a bug in the caller. */
export class KeywardRequestError extends Error {
  override readonly name = 'KeywardRequestError';
  readonly status: number;
  /** The RFC 9457 problem body Keyward answered. */
  readonly problem: Record<string, unknown> | undefined;
  constructor(message: string, status: number, problem?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

/** An RFC 9457 problem, as Keyward answers every refusal (application/problem+json). */
export interface KeywardProblem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** Keyward's problem code: `validation_failed`, `unauthenticated`, `insufficient_scope`, `not_found`, `conflict`, `rate_limited`… */
  code: string;
  /** For validation_failed: each field that is wrong. */
  errors?: Array<{ field: string; message: string }>;
  instance?: string;
}

/**
 * The management client's typed error: Keyward answered with a problem
 * (application/problem+json), e.g. 404 not_found or 409 conflict.
 *
 * @example
 * try { await keyward.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } }); }
 * catch (error) { if (error instanceof KeywardProblemError && error.code === 'not_found') … }
 */
export class KeywardProblemError extends Error {
  override readonly name = 'KeywardProblemError';
  readonly status: number;
  /** The problem's `code`, to branch on. */
  readonly code: string;
  readonly problem: KeywardProblem;
  /** From Retry-After, on a 429 or 503. */
  readonly retryAfterSeconds: number | undefined;
  constructor(problem: KeywardProblem, retryAfterSeconds?: number) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.status = problem.status;
    this.code = problem.code;
    this.problem = problem;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
