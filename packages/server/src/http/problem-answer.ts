// What a failed request answers: the error handler's one decision, shared by
// Fastify's error handler (app.ts) and the /verify fast path
// (verify-fast-path.ts), so an error reads the same whichever answered it.
import { ConflictError, RateLimitedError, ServiceUnavailableError, type ProblemCode } from '@keyward/core';
import type { FastifyBaseLogger } from 'fastify';
import type { DialectCapabilities } from '../storage/index.ts';
import { rateLimitHeaders } from './rate-limit-headers.ts';
import { retryAfter, scrubProblem, toProblem, wwwAuthenticate, type Problem } from './problem.ts';

export interface ProblemAnswer {
  problem: Problem;
  /** Besides the content type: WWW-Authenticate, Retry-After, RateLimit-*. */
  headers: Record<string, string>;
}

export interface ProblemAnswerOptions {
  capabilities: Pick<DialectCapabilities, 'isUniqueViolation' | 'isUnavailable'>;
  countProblem: (code: ProblemCode) => void;
  /** Removes anything token-shaped a caller pasted into the request. */
  scrub: (text: string) => string;
}

export function createProblemAnswerer(options: ProblemAnswerOptions) {
  const { capabilities } = options;
  return function answerProblem(caught: unknown, request: { log: Pick<FastifyBaseLogger, 'warn' | 'error'>; usedAuthorization: boolean; path: string }): ProblemAnswer {
    // A unique index caught what a concurrent request's check could not see yet.
    // A database that is away (or a disk that is full) is a 503 the client may retry, not our bug.
    const error = capabilities.isUniqueViolation(caught)
      ? new ConflictError('That already exists: a concurrent request created it first.')
      : capabilities.isUnavailable(caught)
        ? new ServiceUnavailableError('The database is unavailable; try again shortly.')
        : caught;
    const body = toProblem(error);
    options.countProblem(body.code);
    if (body.status === 503) request.log.warn({ err: caught }, 'request failed: the database is unavailable');
    else if (body.status >= 500) request.log.error({ err: caught }, 'request failed');
    const headers: Record<string, string> = {};
    const challenge = wwwAuthenticate(error, request.usedAuthorization);
    if (challenge) headers['www-authenticate'] = challenge;
    const retry = retryAfter(error);
    if (retry !== null) headers['retry-after'] = String(retry);
    if (error instanceof RateLimitedError && error.window) Object.assign(headers, rateLimitHeaders(error.window));
    // Every problem answer leaves through here, so none repeats a token the caller pasted.
    return { problem: scrubProblem({ ...body, instance: request.path }, options.scrub), headers };
  };
}
