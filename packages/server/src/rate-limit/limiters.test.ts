// The AttemptLimiter contract, in memory, on a real Redis when
// KEYWARD_TEST_REDIS_URL is set, and on an unreachable Redis (which needs no
// server): there the in-memory insurance limiter must keep limiting.
import { randomBytes } from 'node:crypto';
import { RateLimitedError } from '@keyward/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openRedisClient, type RedisClient } from '../redis/redis-client.ts';
import { clientKeyOf, createAttemptLimiter, type AttemptLimiter } from './limiters.ts';

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

async function expectRateLimited(attempt: Promise<void>): Promise<RateLimitedError> {
  const error = await attempt.then(() => null, (rejection: unknown) => rejection);
  expect(error).toBeInstanceOf(RateLimitedError);
  const limited = error as RateLimitedError;
  expect(limited.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect(limited.retryAfterSeconds).toBeLessThanOrEqual(LIMIT.windowSeconds);
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
      await expect(limiter.consume('ip:192.0.2.2')).resolves.toBeUndefined();
    });

    it('reset clears the count', async () => {
      const limiter = await open();
      await spend(limiter, 'account:a@example.com');
      await limiter.reset('account:a@example.com');
      await spend(limiter, 'account:a@example.com');
      await expectRateLimited(limiter.consume('account:a@example.com'));
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
      await expect(replicaA.consume('ip:192.0.2.1')).resolves.toBeUndefined();
    });

    it('keeps counts of limiters with different names apart', async () => {
      const redis = await connected(openTestRedis(REDIS_URL));
      const perIp = createAttemptLimiter('login-ip', LIMIT, redis.connection);
      const perAccount = createAttemptLimiter('login-account', LIMIT, redis.connection);
      await spend(perIp, 'same-key');
      await expect(perAccount.consume('same-key')).resolves.toBeUndefined();
    });

    it('keeps its keys under the key prefix', async () => {
      const redis = await connected(openTestRedis(REDIS_URL));
      await createAttemptLimiter('login-ip', LIMIT, redis.connection).consume('ip:192.0.2.1');
      // The connection adds its prefix to the key: this reads `<prefix>login-ip:ip:192.0.2.1`.
      expect(await redis.connection.exists('login-ip:ip:192.0.2.1')).toBe(1);
    });
  });
}

describe('clientKeyOf', () => {
  it('limits an IPv6 client by its /64 and an IPv4-mapped address as the IPv4 address', () => {
    expect(clientKeyOf('2001:db8::1')).toBe(clientKeyOf('2001:db8::ffff:1'));
    expect(clientKeyOf('2001:db8::1')).not.toBe(clientKeyOf('2001:db8:0:1::1'));
    expect(clientKeyOf('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKeyOf('192.0.2.7')).toBe('192.0.2.7');
  });
});

