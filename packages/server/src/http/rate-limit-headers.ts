// The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), in
// their separate-field form, for any answer that spent or was refused a window.
import type { RateLimitWindow } from '@keyward/core';
import type { FastifyReply } from 'fastify';

/**
 * Tells the client its window: `RateLimit-Limit` the allowance,
 * `RateLimit-Remaining` what is left (0 when refused), `RateLimit-Reset` the
 * seconds until the window resets. Retry-After stays the error handler's job.
 *
 * @example setRateLimitHeaders(reply, { limit: 5, remaining: 0, resetSeconds: 840 });
 */
export function setRateLimitHeaders(reply: FastifyReply, window: RateLimitWindow): void {
  reply.headers(rateLimitHeaders(window));
}

/** The same three fields as a plain record, for answers written without Fastify. */
export function rateLimitHeaders(window: RateLimitWindow): Record<string, string> {
  return {
    'ratelimit-limit': String(Math.max(0, Math.floor(window.limit))),
    'ratelimit-remaining': String(Math.max(0, Math.floor(window.remaining))),
    'ratelimit-reset': String(Math.max(0, Math.ceil(window.resetSeconds))),
  };
}
