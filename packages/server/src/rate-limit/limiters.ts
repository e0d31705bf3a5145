// Attempt limits for the credential-taking routes, with rate-limiter-flexible.
// In memory on one node; a Redis store comes with the scale-out work.
import { RateLimitedError } from '@keyward/core';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimitConfig } from '../config/config.ts';

export interface AttemptLimiter {
  /** Counts one attempt; throws RateLimitedError once the window is spent. */
  consume(key: string): Promise<void>;
  /** Throws RateLimitedError when the key is already spent, without counting. */
  check(key: string): Promise<void>;
  reset(key: string): Promise<void>;
}

function retryAfterSeconds(result: RateLimiterRes): number {
  return Math.max(1, Math.ceil(result.msBeforeNext / 1000));
}

export function createAttemptLimiter(name: string, limit: RateLimitConfig): AttemptLimiter {
  const limiter = new RateLimiterMemory({ keyPrefix: name, points: limit.max, duration: limit.windowSeconds });
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
      } catch (error) {
        if (error instanceof RateLimiterRes) throw new RateLimitedError(retryAfterSeconds(error));
        throw error;
      }
    },
    async check(key) {
      const state = await limiter.get(key);
      if (state && state.remainingPoints <= 0 && state.msBeforeNext > 0) throw new RateLimitedError(retryAfterSeconds(state));
    },
    async reset(key) {
      await limiter.delete(key);
    },
  };
}

export interface Limiters {
  passwordFlow: AttemptLimiter;
  loginPerIp: AttemptLimiter;
  loginPerAccount: AttemptLimiter;
}

export function createLimiters(config: { passwordFlow: RateLimitConfig; loginPerIp: RateLimitConfig; loginPerAccount: RateLimitConfig }): Limiters {
  return {
    passwordFlow: createAttemptLimiter('password-flow', config.passwordFlow),
    loginPerIp: createAttemptLimiter('login-ip', config.loginPerIp),
    loginPerAccount: createAttemptLimiter('login-account', config.loginPerAccount),
  };
}
