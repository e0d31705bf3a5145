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
