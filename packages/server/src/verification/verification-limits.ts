// Rate limits on the verification path, with rate-limiter-flexible: per token
// (its rateLimit), per API client (the client's limit, shared by its tokens),
// and per client address for failed verifications. In memory on one node; in
// Redis across replicas, so a limit of N admits N in total.
import type { RateLimitSetting, RateLimitState } from '@keyward/core';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

export interface RateDecision {
  allowed: boolean;
  state: RateLimitState;
  retryAfterSeconds: number;
}

export interface VerificationLimitsOptions {
  redis?: Redis | undefined;
  keyPrefix: string;
  /** Failed verifications admitted per address and window before the address is refused. */
  failuresPerIp: RateLimitSetting;
  now: () => number;
}

function decision(setting: RateLimitSetting, result: RateLimiterRes, allowed: boolean, nowMs: number): RateDecision {
  return {
    allowed,
    state: { limit: setting.limit, remaining: Math.max(0, result.remainingPoints), resetAt: new Date(nowMs + result.msBeforeNext) },
    retryAfterSeconds: Math.max(1, Math.ceil(result.msBeforeNext / 1000)),
  };
}

export class VerificationLimits {
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private readonly options: VerificationLimitsOptions;
  /** Addresses refused for failures, until (ms): checked without a round trip. */
  private readonly blockedIps = new Map<string, number>();

  constructor(options: VerificationLimitsOptions) {
    this.options = options;
  }

  private limiterFor(kind: string, setting: RateLimitSetting): RateLimiterAbstract {
    const name = `${kind}:${setting.limit}:${setting.windowSeconds}`;
    let limiter = this.limiters.get(name);
    if (!limiter) {
      const keyPrefix = `${this.options.keyPrefix}${name}`;
      const memory = new RateLimiterMemory({ keyPrefix, points: setting.limit, duration: setting.windowSeconds });
      limiter = this.options.redis
        ? new RateLimiterRedis({
            storeClient: this.options.redis,
            keyPrefix,
            points: setting.limit,
            duration: setting.windowSeconds,
            // While Redis is away each replica limits on its own: limits stay on, never fail open.
            insuranceLimiter: memory,
            rejectIfRedisNotReady: true,
          })
        : memory;
      this.limiters.set(name, limiter);
    }
    return limiter;
  }

  private async consume(kind: string, key: string, setting: RateLimitSetting): Promise<RateDecision> {
    try {
      const result = await this.limiterFor(kind, setting).consume(key);
      return decision(setting, result, true, this.options.now());
    } catch (error) {
      if (error instanceof RateLimiterRes) return decision(setting, error, false, this.options.now());
      throw error;
    }
  }

  consumeToken(tokenId: string, setting: RateLimitSetting): Promise<RateDecision> {
    return this.consume('verify-token', tokenId, setting);
  }

  consumeClient(clientId: string, setting: RateLimitSetting): Promise<RateDecision> {
    return this.consume('verify-client', clientId, setting);
  }

  /** Whether this address spent its failures; answered from memory, no round trip. */
  isIpBlocked(ip: string): boolean {
    const until = this.blockedIps.get(ip);
    if (until === undefined) return false;
    if (until > this.options.now()) return true;
    this.blockedIps.delete(ip);
    return false;
  }

  /** Counts one failed verification from `ip`; once the window is spent the address is refused until it resets. */
  async recordFailure(ip: string): Promise<void> {
    const result = await this.consume('verify-failures', ip, this.options.failuresPerIp);
    if (!result.allowed) {
      this.blockedIps.set(ip, result.state.resetAt.getTime());
      // Bounded: an attacker cycling addresses cannot grow this without limit.
      if (this.blockedIps.size > 100_000) this.blockedIps.delete(this.blockedIps.keys().next().value as string);
    }
  }
}
