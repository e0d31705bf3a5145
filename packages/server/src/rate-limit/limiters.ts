// Attempt limits for the credential-taking routes, with rate-limiter-flexible.
// In memory on one node; in Redis across replicas (REDIS_URL), so a client
// cannot multiply its attempts by the number of replicas.
import { RateLimitedError, UnauthenticatedError, normalizeCidr, normalizeEmail, type RateLimitWindow } from '@keyward/core';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimitConfig } from '../config/config.ts';

/** The window after an attempt was counted; `consumed` may exceed `limit` after a penalty. */
export interface CountedAttempt extends RateLimitWindow {
  consumed: number;
}

export interface AttemptLimiter {
  /** Counts one attempt; throws RateLimitedError (with the window, for headers) once the window is spent. */
  consume(key: string): Promise<CountedAttempt>;
  /** Adds `points` to the key's count without refusing anything now. */
  penalize(key: string, points: number): Promise<void>;
  /** Takes `points` back off the key's count. */
  reward(key: string, points: number): Promise<void>;
  reset(key: string): Promise<void>;
}

function secondsUntil(msBeforeNext: number): number {
  return Math.max(1, Math.ceil(msBeforeNext / 1000));
}

/** With `redis`, the count is shared by every replica using that Redis; without, it is this process's. */
export function createAttemptLimiter(name: string, limit: RateLimitConfig, redis?: Redis): AttemptLimiter {
  const memory = new RateLimiterMemory({ keyPrefix: name, points: limit.max, duration: limit.windowSeconds });
  const limiter: RateLimiterAbstract = redis
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
        const counted = await limiter.consume(key);
        return { limit: limit.max, remaining: counted.remainingPoints, resetSeconds: secondsUntil(counted.msBeforeNext), consumed: counted.consumedPoints };
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        const resetSeconds = secondsUntil(error.msBeforeNext);
        throw new RateLimitedError(resetSeconds, undefined, { limit: limit.max, remaining: 0, resetSeconds });
      }
    },
    async penalize(key, points) {
      await limiter.penalty(key, points);
    },
    async reward(key, points) {
      await limiter.reward(key, points);
    },
    async reset(key) {
      await limiter.delete(key);
    },
  };
}

/**
 * How guessing one account's password is bounded (issue 8): each address has
 * its own allowance on the account, so a guesser blocks only itself; the
 * account's budget over all addresses makes guessers from many addresses
 * count, and its ceiling bounds the total.
 */
export interface AccountGuessLimits {
  /** Failures one address may make on one account per window (the `loginPerAccount` setting). */
  perAddress: RateLimitConfig;
  /** Failures from all addresses on one account per window after which every failing address is blocked at its first failure. */
  budget: number;
  /** Attempts from all addresses on one account per window after which everyone waits, the owner too. */
  ceiling: number;
}

/** The budget is ten addresses' worth of failures, the ceiling a hundred: both in the same window. */
export function accountGuessLimits(perAddress: RateLimitConfig): AccountGuessLimits {
  return { perAddress, budget: perAddress.max * 10, ceiling: perAddress.max * 100 };
}

export interface Limiters {
  passwordFlow: AttemptLimiter;
  loginPerIp: AttemptLimiter;
  /** Per (account, address): blocks an address that keeps failing on one account. */
  loginPerAccountAddress: AttemptLimiter;
  /** Per account, over all addresses: the budget and the ceiling. */
  loginPerAccount: AttemptLimiter;
  account: AccountGuessLimits;
}

export function createLimiters(config: { passwordFlow: RateLimitConfig; loginPerIp: RateLimitConfig; loginPerAccount: RateLimitConfig }, redis?: Redis): Limiters {
  const account = accountGuessLimits(config.loginPerAccount);
  return {
    passwordFlow: createAttemptLimiter('password-flow', config.passwordFlow, redis),
    loginPerIp: createAttemptLimiter('login-ip', config.loginPerIp, redis),
    loginPerAccountAddress: createAttemptLimiter('login-account-address', account.perAddress, redis),
    loginPerAccount: createAttemptLimiter('login-account', { max: account.ceiling, windowSeconds: account.perAddress.windowSeconds }, redis),
    account,
  };
}

/**
 * The key an address is limited under. An IPv6 client usually holds a whole
 * /64, so limiting single addresses would let it walk through its prefix;
 * IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
 */
export function clientKeyOf(ip: string): string {
  // Every verification from an address asks: an IPv4 address, the common case, is its own key.
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  let key = ipv6Keys.get(ip);
  if (key === undefined) {
    try {
      key = normalizeCidr(`${ip}/64`);
    } catch {
      key = ip;
    }
    ipv6Keys.set(ip, key);
  }
  return key;
}

/** IPv6 addresses' /64 keys, kept: normalizing one costs more than the rest of a cached verification. */
const ipv6Keys = new LRUCache<string, string>({ max: 10_000 });

/**
 * Runs one password check under the per-account limits. Attempts are counted
 * before the check, so parallel guesses cannot all slip under a limit.
 *
 * - An address that failed `perAddress.max` times on the account is refused
 *   for the rest of its window; other addresses are not (the owner is not
 *   locked out by someone else's guessing).
 * - Once the account's failures from all addresses pass the budget, a failing
 *   address is blocked at its first failure: a guesser with many addresses
 *   gets one guess per address per window, an address that has not failed
 *   still gets in.
 * - Past the ceiling everyone waits for the window: the bound on the total.
 *
 * A success clears the address's count and gives the account its attempt back.
 */
export async function withAccountLimit<T>(limiters: Limiters, email: string, clientKey: string, attempt: () => Promise<T>): Promise<T> {
  const account = normalizeEmail(email);
  const pair = `${clientKey} ${account}`;
  await limiters.loginPerAccountAddress.consume(pair);
  let total: CountedAttempt;
  try {
    total = await limiters.loginPerAccount.consume(account);
  } catch (error) {
    // Refused by the ceiling, not a guess: it does not count against the address.
    await limiters.loginPerAccountAddress.reward(pair, 1);
    throw error;
  }
  let result: T;
  try {
    result = await attempt();
  } catch (error) {
    if (error instanceof UnauthenticatedError && total.consumed > limiters.account.budget) {
      await limiters.loginPerAccountAddress.penalize(pair, limiters.account.perAddress.max);
    }
    throw error;
  }
  await limiters.loginPerAccountAddress.reset(pair);
  await limiters.loginPerAccount.reward(account, 1);
  return result;
}
