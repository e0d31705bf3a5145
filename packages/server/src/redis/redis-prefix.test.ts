// KEYWARD_REDIS_PREFIX keeps two deployments on one Redis apart: Redis pub/sub
// ignores the database number, so without it they would hear each other's
// invalidations. Needs KEYWARD_TEST_REDIS_URL.
import { randomBytes } from 'node:crypto';
import type { KeywardEvent } from '@keyward/core';
import { afterEach, expect, it, vi } from 'vitest';
import { listen } from '../events/event-bus-contract.ts';
import type { RedisEventBus } from '../events/redis-event-bus.ts';
import { describeEachDialect } from '../storage/test-databases.ts';
import { createTestApp, type TestApp } from '../testing/test-app.ts';

const REDIS_URL = process.env.KEYWARD_TEST_REDIS_URL;

describeEachDialect('KEYWARD_REDIS_PREFIX', (open, dialect) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function deployment(prefix: string): Promise<TestApp> {
    const t = await createTestApp(open, { env: { REDIS_URL: REDIS_URL as string, KEYWARD_REDIS_PREFIX: prefix } });
    apps.push(t);
    await (t.context.deps.bus as RedisEventBus).listening;
    await vi.waitFor(async () => expect(await t.context.redis?.ping()).toBe(true), { timeout: 2000, interval: 10 });
    return t;
  }

  // The bus does not depend on the dialect: once is enough.
  it.runIf(REDIS_URL && dialect === 'sqlite')('namespaces the Redis keys and the event channel, so deployments with different prefixes do not hear each other', async () => {
    const run = randomBytes(4).toString('hex');
    const ours = await deployment(`keyward-test-${run}-a:`);
    const ourOtherReplica = await deployment(`keyward-test-${run}-a:`);
    const theirs = await deployment(`keyward-test-${run}-b:`);
    expect(ours.context.redis?.keyPrefix).toBe(`keyward-test-${run}-a:`);
    expect(ours.context.redis?.connection.options.keyPrefix).toBe(`keyward-test-${run}-a:`);

    const heard = listen(ours.context.deps.bus);
    const event = (organizationId: string): KeywardEvent => ({ type: 'tokens.changed', organizationId, tokenIds: ['tok_1'] });
    await theirs.context.deps.bus.publish(event('org_theirs'));
    // Redis delivers in order: theirs would have arrived before this one.
    await ourOtherReplica.context.deps.bus.publish(event('org_ours'));
    await heard.received(1);
    expect(heard.events).toEqual([event('org_ours')]);
  });
});
