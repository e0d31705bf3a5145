// The AttemptLimiter contract, in memory, on a real Redis when
// KEYWARD_TEST_REDIS_URL is set, and on an unreachable Redis (which needs no
// server): there the in-memory insurance limiter must keep limiting.
import { randomBytes } from 'node:crypto';
import { RateLimitedError, UnauthenticatedError } from '@keyward/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openRedisClient, type RedisClient } from '../redis/redis-client.ts';
import { clientKeyOf, createAttemptLimiter, createLimiters, withAccountLimit, type AttemptLimiter, type Limiters } from './limiters.ts';

const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL;
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:1';
const LIMIT = { max: 3, windowSeconds: 60 };

type OpenLimiter = () => Promise<AttemptLimiter>;

const opened: RedisClient[] = [];
afterEach(async () => {
  await Promise.all(
    opened.splice(0).map(async (redis) => {
      if (redis.connection.status === 'ready') await deleteKeys(redis);
      await redis.close();
    }),
  );
});

/** Every key under the test's prefix; SCAN patterns and replies carry the prefix, DEL adds it itself. */
async function deleteKeys(redis: RedisClient): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.connection.scan(cursor, 'MATCH', `${redis.keyPrefix}*`, 'COUNT', 100);
    if (keys.length > 0) await redis.connection.del(...keys.map((key) => key.slice(redis.keyPrefix.length)));
    cursor = next;
  } while (cursor !== '0');
}

function testPrefix(): string {
  return `keyward-test:${randomBytes(6).toString('hex')}:`;
}

function openTestRedis(url: string, keyPrefix = testPrefix()): RedisClient {
  const redis = openRedisClient({ url, keyPrefix, log: { info: vi.fn(), warn: vi.fn() }, connectTimeoutMs: 200 });
  opened.push(redis);
  return redis;
}

async function connected(redis: RedisClient): Promise<RedisClient> {
  await vi.waitFor(async () => expect(await redis.ping()).toBe(true), { timeout: 2000, interval: 10 });
  return redis;
}

async function expectRateLimited(attempt: Promise<unknown>, limit = LIMIT): Promise<RateLimitedError> {
  const error = await attempt.then(() => null, (rejection: unknown) => rejection);
  expect(error).toBeInstanceOf(RateLimitedError);
  const limited = error as RateLimitedError;
  expect(limited.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect(limited.retryAfterSeconds).toBeLessThanOrEqual(limit.windowSeconds);
  // The window for the RateLimit-* headers: nothing left, resetting when Retry-After says.
  expect(limited.window).toEqual({ limit: limit.max, remaining: 0, resetSeconds: limited.retryAfterSeconds });
  return limited;
}

async function spend(limiter: AttemptLimiter, key: string, attempts = LIMIT.max): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) await limiter.consume(key);
}

function describeAttemptLimiter(name: string, open: OpenLimiter): void {
  describe(name, () => {
    it('allows max attempts in a window, then throws RateLimitedError with the seconds to wait', async () => {
      const limiter = await open();
      await spend(limiter, 'ip:192.0.2.1');
      await expectRateLimited(limiter.consume('ip:192.0.2.1'));
      await expectRateLimited(limiter.consume('ip:192.0.2.1'));
    });

    it('counts each key on its own', async () => {
      const limiter = await open();
      await spend(limiter, 'ip:192.0.2.1');
      await expect(limiter.consume('ip:192.0.2.2')).resolves.toMatchObject({ limit: LIMIT.max, remaining: LIMIT.max - 1, consumed: 1 });
    });

    it('reset clears the count', async () => {
      const limiter = await open();
      await spend(limiter, 'account:a@example.com');
      await limiter.reset('account:a@example.com');
      await spend(limiter, 'account:a@example.com');
      await expectRateLimited(limiter.consume('account:a@example.com'));
    });

    it('answers the window after each attempt: what is left and the seconds until it resets', async () => {
      const limiter = await open();
      const first = await limiter.consume('ip:192.0.2.1');
      expect(first).toMatchObject({ limit: LIMIT.max, remaining: LIMIT.max - 1, consumed: 1 });
      expect(first.resetSeconds).toBeGreaterThan(0);
      expect(first.resetSeconds).toBeLessThanOrEqual(LIMIT.windowSeconds);
    });

    it('penalize spends the window at once, and reward gives attempts back', async () => {
      const limiter = await open();
      await limiter.consume('ip:192.0.2.1');
      await limiter.penalize('ip:192.0.2.1', LIMIT.max);
      await expectRateLimited(limiter.consume('ip:192.0.2.1'));
      await limiter.reset('ip:192.0.2.1');
      await spend(limiter, 'ip:192.0.2.1');
      await limiter.reward('ip:192.0.2.1', 1);
      await expect(limiter.consume('ip:192.0.2.1')).resolves.toMatchObject({ remaining: 0 });
    });

    it('reset of an unknown key is harmless', async () => {
      const limiter = await open();
      await expect(limiter.reset('never-seen')).resolves.toBeUndefined();
    });
  });
}

describeAttemptLimiter('the attempt limiter in memory', async () => createAttemptLimiter('login-ip', LIMIT));

describeAttemptLimiter('the attempt limiter on an unreachable Redis (its in-memory insurance)', async () =>
  createAttemptLimiter('login-ip', LIMIT, openTestRedis(UNREACHABLE_REDIS_URL).connection),
);

if (REDIS_URL) {
  describeAttemptLimiter('the attempt limiter on Redis', async () => createAttemptLimiter('login-ip', LIMIT, (await connected(openTestRedis(REDIS_URL))).connection));

  describe('the attempt limiter on Redis across replicas', () => {
    it('shares one count between two limiters on the same Redis', async () => {
      const prefix = testPrefix();
      const replicaA = createAttemptLimiter('login-ip', LIMIT, (await connected(openTestRedis(REDIS_URL, prefix))).connection);
      const replicaB = createAttemptLimiter('login-ip', LIMIT, (await connected(openTestRedis(REDIS_URL, prefix))).connection);
      await spend(replicaA, 'ip:192.0.2.1', LIMIT.max - 1);
      await replicaB.consume('ip:192.0.2.1');
      await expectRateLimited(replicaA.consume('ip:192.0.2.1'));
      await expectRateLimited(replicaB.consume('ip:192.0.2.1'));
      await replicaB.reset('ip:192.0.2.1');
      await expect(replicaA.consume('ip:192.0.2.1')).resolves.toMatchObject({ consumed: 1 });
    });

    it('keeps counts of limiters with different names apart', async () => {
      const redis = await connected(openTestRedis(REDIS_URL));
      const perIp = createAttemptLimiter('login-ip', LIMIT, redis.connection);
      const perAccount = createAttemptLimiter('login-account', LIMIT, redis.connection);
      await spend(perIp, 'same-key');
      await expect(perAccount.consume('same-key')).resolves.toMatchObject({ consumed: 1 });
    });

    it('keeps its keys under the key prefix', async () => {
      const redis = await connected(openTestRedis(REDIS_URL));
      await createAttemptLimiter('login-ip', LIMIT, redis.connection).consume('ip:192.0.2.1');
      // The connection adds its prefix to the key: this reads `<prefix>login-ip:ip:192.0.2.1`.
      expect(await redis.connection.exists('login-ip:ip:192.0.2.1')).toBe(1);
    });
  });
}

// Two failures per address on an account: a budget of 20 over all addresses, a ceiling of 200.
const PER_ADDRESS = { max: 2, windowSeconds: 60 };
const ACCOUNT = 'owner@example.com';

function describeAccountGuessing(name: string, open: () => Promise<Limiters>): void {
  describe(name, () => {
    const wrongPassword = async (): Promise<never> => {
      throw new UnauthenticatedError('The email or password is wrong.', 'credentials');
    };
    const rightPassword = async () => 'signed in';

    async function fail(limiters: Limiters, address: string, times = 1, email = ACCOUNT): Promise<void> {
      for (let attempt = 0; attempt < times; attempt++) {
        await expect(withAccountLimit(limiters, email, address, wrongPassword)).rejects.toBeInstanceOf(UnauthenticatedError);
      }
    }

    it('blocks an address that failed too often on an account, even with the right password, and no other address', async () => {
      const limiters = await open();
      await fail(limiters, '198.51.100.1', PER_ADDRESS.max);
      const attempt = vi.fn(rightPassword);
      await expectRateLimited(withAccountLimit(limiters, ACCOUNT.toUpperCase(), '198.51.100.1', attempt), PER_ADDRESS);
      expect(attempt).not.toHaveBeenCalled();
      await expect(withAccountLimit(limiters, ACCOUNT, '203.0.113.7', rightPassword)).resolves.toBe('signed in');
      // The same address is not blocked on another account.
      await expect(withAccountLimit(limiters, 'someone@example.com', '198.51.100.1', rightPassword)).resolves.toBe('signed in');
    });

    it('clears the count of an address when it signs in', async () => {
      const limiters = await open();
      await fail(limiters, '198.51.100.1', PER_ADDRESS.max - 1);
      await withAccountLimit(limiters, ACCOUNT, '198.51.100.1', rightPassword);
      await fail(limiters, '198.51.100.1', PER_ADDRESS.max - 1);
      await expect(withAccountLimit(limiters, ACCOUNT, '198.51.100.1', rightPassword)).resolves.toBe('signed in');
    });

    it('once the budget is spent, blocks each failing address at its first failure but still lets in an address that has not failed', async () => {
      const limiters = await open();
      const budget = limiters.account.budget;
      for (let host = 1; host <= budget / PER_ADDRESS.max; host++) await fail(limiters, `198.51.100.${host}`, PER_ADDRESS.max);
      await fail(limiters, '192.0.2.1');
      await expectRateLimited(withAccountLimit(limiters, ACCOUNT, '192.0.2.1', rightPassword), PER_ADDRESS);
      await expect(withAccountLimit(limiters, ACCOUNT, '203.0.113.7', rightPassword)).resolves.toBe('signed in');
    });

    it('bounds the total: past the ceiling every address waits for the window, the owner too', async () => {
      const limiters = await open();
      const { budget, ceiling } = limiters.account;
      for (let host = 1; host <= budget / PER_ADDRESS.max; host++) await fail(limiters, `198.51.100.${host}`, PER_ADDRESS.max);
      for (let host = 0; host < ceiling - budget; host++) await fail(limiters, `10.0.${Math.floor(host / 250)}.${host % 250}`);
      const attempt = vi.fn(rightPassword);
      await expectRateLimited(withAccountLimit(limiters, ACCOUNT, '203.0.113.7', attempt), { max: ceiling, windowSeconds: PER_ADDRESS.windowSeconds });
      expect(attempt).not.toHaveBeenCalled();
    });
  });
}

const ACCOUNT_LIMITS = { passwordFlow: LIMIT, loginPerIp: LIMIT, loginPerAccount: PER_ADDRESS };

describeAccountGuessing('withAccountLimit in memory', async () => createLimiters(ACCOUNT_LIMITS));

if (REDIS_URL) {
  describeAccountGuessing('withAccountLimit on Redis', async () => createLimiters(ACCOUNT_LIMITS, (await connected(openTestRedis(REDIS_URL))).connection));
}

describe('clientKeyOf', () => {
  it('limits an IPv6 client by its /64 and an IPv4-mapped address as the IPv4 address', () => {
    expect(clientKeyOf('2001:db8::1')).toBe(clientKeyOf('2001:db8::ffff:1'));
    expect(clientKeyOf('2001:db8::1')).not.toBe(clientKeyOf('2001:db8:0:1::1'));
    expect(clientKeyOf('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKeyOf('192.0.2.7')).toBe('192.0.2.7');
  });

  it('gives an IPv6 address the same key when asked again (kept), and leaves what does not parse as it is', () => {
    expect(clientKeyOf('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKeyOf('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKeyOf('not:an:address')).toBe('not:an:address');
    expect(clientKeyOf('not:an:address')).toBe('not:an:address');
  });
});

