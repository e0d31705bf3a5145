// Verification rate limits in memory, and on a real Redis when
// KEYWARD_TEST_REDIS_URL is set: there two replicas share one count, so a
// limit of N admits N in total, not N per replica.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openRedisClient, type RedisClient } from '../redis/redis-client.ts';
import { VerificationLimits } from './verification-limits.ts';

const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL;
const FAILURES = { limit: 3, windowSeconds: 60 };
const now = () => Date.parse('2026-01-05T10:00:00Z');

const opened: RedisClient[] = [];
afterEach(async () => {
  for (const redis of opened.splice(0)) {
    const keys = await redis.connection.keys(`${redis.keyPrefix}*`);
    if (keys.length > 0) await redis.connection.del(...keys.map((key) => key.slice(redis.keyPrefix.length)));
    await redis.close();
  }
});

describe('VerificationLimits in memory', () => {
  it("admits a token's limit per window, then refuses with the state to report", async () => {
    const limits = new VerificationLimits({ keyPrefix: 't:', failuresPerIp: FAILURES, now });
    const setting = { limit: 2, windowSeconds: 60 };
    expect(await limits.consumeToken('tok_1', setting)).toMatchObject({ allowed: true, state: { limit: 2, remaining: 1 } });
    expect(await limits.consumeToken('tok_1', setting)).toMatchObject({ allowed: true, state: { remaining: 0 } });
    const refused = await limits.consumeToken('tok_1', setting);
    expect(refused).toMatchObject({ allowed: false, state: { limit: 2, remaining: 0 } });
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect((await limits.consumeToken('tok_2', setting)).allowed).toBe(true);
  });

  it('keeps a token limit and a client limit apart, even under the same id', async () => {
    const limits = new VerificationLimits({ keyPrefix: 't:', failuresPerIp: FAILURES, now });
    const setting = { limit: 1, windowSeconds: 60 };
    expect((await limits.consumeToken('x', setting)).allowed).toBe(true);
    expect((await limits.consumeClient('x', setting)).allowed).toBe(true);
  });

  it('blocks an address once it spent its failures, answering from memory', async () => {
    const limits = new VerificationLimits({ keyPrefix: 't:', failuresPerIp: FAILURES, now });
    for (let i = 0; i < 3; i++) await limits.recordFailure('203.0.113.1');
    expect(limits.isIpBlocked('203.0.113.1')).toBe(false);
    await limits.recordFailure('203.0.113.1');
    expect(limits.isIpBlocked('203.0.113.1')).toBe(true);
    expect(limits.isIpBlocked('203.0.113.2')).toBe(false);
  });
});

describe.skipIf(!REDIS_URL)('VerificationLimits on Redis', () => {
  async function replica(prefix: string): Promise<VerificationLimits> {
    const redis = openRedisClient({ url: REDIS_URL!, keyPrefix: prefix, log: { info: () => {}, warn: () => {} } });
    opened.push(redis);
    if (redis.connection.status !== 'ready') await new Promise((resolve) => redis.connection.once('ready', resolve));
    return new VerificationLimits({ redis: redis.connection, keyPrefix: '', failuresPerIp: FAILURES, now });
  }

  it('shares one count between replicas: a limit of 3 admits 3 in total', async () => {
    const prefix = `keyward-test:${randomBytes(6).toString('hex')}:`;
    const a = await replica(prefix);
    const b = await replica(prefix);
    const setting = { limit: 3, windowSeconds: 60 };
    const answers = [await a.consumeToken('tok_1', setting), await b.consumeToken('tok_1', setting), await a.consumeToken('tok_1', setting), await b.consumeToken('tok_1', setting)];
    expect(answers.map((answer) => answer.allowed)).toEqual([true, true, true, false]);
  });
});
