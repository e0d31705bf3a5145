// On a real Redis when KEYWARD_TEST_REDIS_URL is set; the unreachable-Redis
// behaviour needs no server and always runs. Each test has its own key prefix,
// hence its own channel, so parallel test files never hear each other.
import { randomBytes } from 'node:crypto';
import type { EventBus, KeywardEvent } from '@keyward/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openRedisClient, type RedisClient } from '../redis/redis-client.ts';
import { startTcpProxy, type TcpProxy } from '../testing/tcp-proxy.ts';
import { describeEventBus, listen } from './event-bus-contract.ts';
import { createRedisEventBus, eventChannel, type RedisEventBus } from './redis-event-bus.ts';

const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL;
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:1';

const opened: RedisClient[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((redis) => redis.close()));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

function testPrefix(): string {
  return `keyward-test:${randomBytes(6).toString('hex')}:`;
}

function openTestRedis(url: string, keyPrefix: string, log = { info: vi.fn(), warn: vi.fn() }): RedisClient {
  const redis = openRedisClient({ url, keyPrefix, log, connectTimeoutMs: 200 });
  opened.push(redis);
  return redis;
}

/** A replica's bus, once it both publishes and hears Redis. */
async function openReplica(url: string, keyPrefix: string): Promise<{ redis: RedisClient; bus: RedisEventBus }> {
  const redis = openTestRedis(url, keyPrefix);
  const bus = createRedisEventBus(redis);
  await bus.listening;
  await vi.waitFor(async () => expect(await redis.ping()).toBe(true), { timeout: 2000, interval: 10 });
  return { redis, bus };
}

/** Redis behind a TCP proxy this test can cut (the shared server itself never stops). */
async function proxyRedis(url: string): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(url);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379));
  proxies.push(proxy);
  target.hostname = '127.0.0.1';
  target.port = String(proxy.port);
  return { proxy, url: target.href };
}

const tokensChanged = (organizationId: string): KeywardEvent => ({ type: 'tokens.changed', organizationId, tokenIds: ['tok_1'] });

if (REDIS_URL) {
  describeEventBus('the Redis event bus', async () => (await openReplica(REDIS_URL, testPrefix())).bus);

  // The same contract with Redis in the middle: published on one replica, heard on another.
  describeEventBus('the Redis event bus between two replicas', async () => {
    const prefix = testPrefix();
    const publisher = await openReplica(REDIS_URL, prefix);
    const subscriber = await openReplica(REDIS_URL, prefix);
    return { publish: (event) => publisher.bus.publish(event), subscribe: (onEvent) => subscriber.bus.subscribe(onEvent) } satisfies EventBus;
  });

  describe('the Redis event bus across replicas', () => {
    it('lets two buses on the same Redis hear each other, and each hears its own events once', async () => {
      const prefix = testPrefix();
      const a = await openReplica(REDIS_URL, prefix);
      const b = await openReplica(REDIS_URL, prefix);
      const c = await openReplica(REDIS_URL, prefix);
      const heardByA = listen(a.bus);
      const heardByB = listen(b.bus);
      await a.bus.publish(tokensChanged('org_from_a'));
      await b.bus.publish(tokensChanged('org_from_b'));
      // From a third replica, so it comes after every echo of A's and B's own events.
      await c.bus.publish(tokensChanged('org_last'));
      await heardByA.received(3);
      await heardByB.received(3);
      // Each replica hears its own events first, so only the set is the same everywhere.
      const expected = [tokensChanged('org_from_a'), tokensChanged('org_from_b'), tokensChanged('org_last')];
      expect(heardByA.events).toEqual(expect.arrayContaining(expected));
      expect(heardByB.events).toEqual(expect.arrayContaining(expected));
    });

    it('does not hear a deployment with another key prefix', async () => {
      const prefix = testPrefix();
      const ours = await openReplica(REDIS_URL, prefix);
      const ourOtherReplica = await openReplica(REDIS_URL, prefix);
      const theirs = await openReplica(REDIS_URL, testPrefix());
      const heard = listen(ours.bus);
      await theirs.bus.publish(tokensChanged('org_theirs'));
      // Redis delivers in order, so theirs would have arrived before this one.
      await ourOtherReplica.bus.publish(tokensChanged('org_last'));
      await heard.received(1);
      expect(heard.events).toEqual([tokensChanged('org_last')]);
    });

    it('reports a gap once its first subscription is answered, since a replica may serve before it hears the others', async () => {
      const redis = openTestRedis(REDIS_URL, testPrefix());
      const bus = createRedisEventBus(redis);
      const reasons: string[] = [];
      bus.onGap((reason) => reasons.push(reason));
      await bus.listening;
      expect(reasons).toEqual(['subscribed']);
    });

    it('reports a gap when it subscribes again after losing Redis, since what was published meanwhile never arrives', async () => {
      const { proxy, url: proxiedUrl } = await proxyRedis(REDIS_URL);
      const prefix = testPrefix();
      const cutOff = await openReplica(proxiedUrl, prefix);
      const other = await openReplica(REDIS_URL, prefix);
      const gaps: string[] = [];
      cutOff.bus.onGap((reason) => gaps.push(reason));
      const heard = listen(cutOff.bus);

      proxy.cut();
      await other.bus.publish(tokensChanged('org_missed'));
      expect(gaps).toEqual([]);
      proxy.restore();
      await vi.waitFor(() => expect(gaps).toEqual(['resubscribed']), { timeout: 5000, interval: 20 });
      await other.bus.publish(tokensChanged('org_after'));
      await heard.received(1);
      expect(heard.events).toEqual([tokensChanged('org_after')]);
    });

    it('publishes again, once Redis is back, the events it could not publish while Redis was away', async () => {
      const { proxy, url: proxiedUrl } = await proxyRedis(REDIS_URL);
      const prefix = testPrefix();
      const publisher = await openReplica(proxiedUrl, prefix);
      const listener = await openReplica(REDIS_URL, prefix);
      const heard = listen(listener.bus);

      proxy.cut();
      await expect(publisher.bus.publish(tokensChanged('org_during'))).rejects.toThrow();
      expect(publisher.bus.unsentCount).toBe(1);
      proxy.restore();
      // The client retries every 2 s at most, then sends what it kept.
      await vi.waitFor(() => expect(heard.events).toEqual([tokensChanged('org_during')]), { timeout: 5000, interval: 20 });
      expect(publisher.bus.unsentCount).toBe(0);
    });

    it('ignores malformed messages on the channel and keeps listening', async () => {
      const prefix = testPrefix();
      const listener = await openReplica(REDIS_URL, prefix);
      const sender = await openReplica(REDIS_URL, prefix);
      const heard = listen(listener.bus);
      const channel = eventChannel(prefix);
      const malformed = [
        'not json',
        'null',
        '[]',
        JSON.stringify(tokensChanged('org_no_envelope')),
        JSON.stringify({ origin: 'elsewhere', event: { type: 'tokens.changed', organizationId: 'org_1' } }),
        JSON.stringify({ origin: 'elsewhere', event: { type: 'tokens.changed', organizationId: 'org_1', tokenIds: [1] } }),
        JSON.stringify({ origin: 'elsewhere', event: { type: 'member.changed', organizationId: 'org_1' } }),
        JSON.stringify({ origin: 'elsewhere', event: { type: 'constructor', organizationId: 'org_1' } }),
        JSON.stringify({ origin: 'elsewhere', event: { type: 'something.new', organizationId: 'org_1' } }),
        JSON.stringify({ origin: 42, event: tokensChanged('org_1') }),
      ];
      for (const message of malformed) await sender.redis.connection.publish(channel, message);
      await sender.bus.publish(tokensChanged('org_valid'));
      await heard.received(1);
      expect(heard.events).toEqual([tokensChanged('org_valid')]);
    });
  });
}

describe('the Redis event bus while Redis is unreachable', () => {
  it("still delivers to this process's subscribers, and publish rejects so the caller knows the other replicas missed it", async () => {
    const redis = openTestRedis(UNREACHABLE_REDIS_URL, testPrefix());
    const bus = createRedisEventBus(redis);
    const heard = listen(bus);
    await expect(bus.publish(tokensChanged('org_1'))).rejects.toThrow();
    expect(heard.events).toEqual([tokensChanged('org_1')]);
  });

  it('logs the outage once, however often it retries, instead of ending the process', async () => {
    const log = { info: vi.fn(), warn: vi.fn() };
    const redis = openTestRedis(UNREACHABLE_REDIS_URL, testPrefix(), log);
    createRedisEventBus(redis);
    let reconnects = 0;
    redis.connection.on('reconnecting', () => void reconnects++);
    await vi.waitFor(() => expect(reconnects).toBeGreaterThanOrEqual(2), { timeout: 2000, interval: 10 });
    // One warning per connection: the command connection and the subscriber.
    expect(log.warn).toHaveBeenCalledTimes(2);
    expect(log.warn.mock.calls.map(([fields]) => fields.connection).sort()).toEqual(['keyward', 'keyward-subscriber']);
    expect(await redis.ping()).toBe(false);
  });
});
