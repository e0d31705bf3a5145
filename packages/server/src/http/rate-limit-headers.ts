// RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset (IETF httpapi
// ratelimit-headers draft) on every answer that reports a rate limit.
import type { RateLimitState } from '@keyward/core';
import type { FastifyReply } from 'fastify';

export function setRateLimitHeaders(reply: FastifyReply, state: RateLimitState, now: Date): void {
  reply.header('ratelimit-limit', String(state.limit));
  reply.header('ratelimit-remaining', String(Math.max(0, state.remaining)));
  reply.header('ratelimit-reset', String(Math.max(0, Math.ceil((state.resetAt.getTime() - now.getTime()) / 1000))));
}
