// Attempt limits for the credential-taking routes, with rate-limiter-flexible.
// In memory on one node; in Redis across replicas (REDIS_URL), so a client
// cannot multiply its attempts by the number of replicas.
import { RateLimitedError, normalizeCidr, normalizeEmail } from '@keyward/core';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimitConfig } from '../config/config.ts';

export interface AttemptLimiter {
  /** Counts one attempt; throws RateLimitedError once the window is spent. */
  consume(key: string): Promise<void>;
  reset(key: string): Promise<void>;
}

function retryAfterSeconds(result: RateLimiterRes): number {
  return Math.max(1, Math.ceil(result.msBeforeNext / 1000));
}

/** With `redis`, the count is shared by every replica using that Redis; without, it is this process's. */
export function createAttemptLimiter(name: string, limit: RateLimitConfig, redis?: Redis): AttemptLimiter {
  const memory = new RateLimiterMemory({ keyPrefix: name, points: limit.max, duration: limit.windowSeconds });
  const limiter = redis
    ? new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: name,
        points: limit.max,
        duration: limit.windowSeconds,
        // While Redis is away, each replica limits on its own rather than failing open (or failing every login).
        insuranceLimiter: memory,
        rejectIfRedisNotReady: true,
      })
    : memory;
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
      } catch (error) {
        if (error instanceof RateLimiterRes) throw new RateLimitedError(retryAfterSeconds(error));
        throw error;
      }
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

export function createLimiters(config: { passwordFlow: RateLimitConfig; loginPerIp: RateLimitConfig; loginPerAccount: RateLimitConfig }, redis?: Redis): Limiters {
  return {
    passwordFlow: createAttemptLimiter('password-flow', config.passwordFlow, redis),
    loginPerIp: createAttemptLimiter('login-ip', config.loginPerIp, redis),
    loginPerAccount: createAttemptLimiter('login-account', config.loginPerAccount, redis),
  };
}

/**
 * The key an address is limited under. An IPv6 client usually holds a whole
 * /64, so limiting single addresses would let it walk through its prefix;
 * IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
 */
export function clientKeyOf(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!ip.includes(':')) return ip;
  try {
    return normalizeCidr(`${ip}/64`);
  } catch {
    return ip;
  }
}

/**
 * Runs one password check under the per-account limit. The attempt is counted
 * before the check, so parallel guesses cannot all slip under the limit; a
 * success clears the count.
 */
export async function withAccountLimit<T>(limiters: Limiters, email: string, attempt: () => Promise<T>): Promise<T> {
  const account = normalizeEmail(email);
  await limiters.loginPerAccount.consume(account);
  const result = await attempt();
  await limiters.loginPerAccount.reset(account);
  return result;
}

