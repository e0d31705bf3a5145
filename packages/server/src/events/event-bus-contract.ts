// The behaviour every EventBus owes the caches that listen to it, run against
// each implementation. Delivery may be asynchronous (Redis), so a test waits
// for a last event before it looks: the bus delivers in order, so whatever was
// going to arrive before it has arrived by then.
import type { EventBus, KeywardEvent } from '@keyward/core';
import { describe, expect, it, vi } from 'vitest';

export type OpenEventBus = () => Promise<EventBus>;

const DELIVERY_TIMEOUT_MS = 2000;

function tokensChanged(organizationId: string, tokenIds: string[] = ['tok_1']): KeywardEvent {
  return { type: 'tokens.changed', organizationId, tokenIds };
}

/** The last event of a test; once a listener has it, it has everything published before it. */
const LAST: KeywardEvent = { type: 'organization.changed', organizationId: 'org_last' };

/** Records what a subscriber hears. */
export function listen(bus: EventBus): { events: KeywardEvent[]; stop: () => void; received: (count: number) => Promise<void> } {
  const events: KeywardEvent[] = [];
  const stop = bus.subscribe((event) => void events.push(event));
  const received = (count: number) => vi.waitFor(() => expect(events).toHaveLength(count), { timeout: DELIVERY_TIMEOUT_MS, interval: 5 });
  return { events, stop, received };
}

/**
 * Declares the EventBus contract for one implementation. `open()` answers a
 * ready bus of its own; the caller closes what it opened (e.g. in an afterEach).
 *
 * @example
 * describeEventBus('the memory event bus', async () => createMemoryEventBus());
 */
export function describeEventBus(name: string, open: OpenEventBus): void {
  describe(name, () => {
    it('delivers each event to every subscriber, once', async () => {
      const bus = await open();
      const first = listen(bus);
      const second = listen(bus);
      await bus.publish(tokensChanged('org_1'));
      await bus.publish(LAST);
      await first.received(2);
      await second.received(2);
      expect(first.events).toEqual([tokensChanged('org_1'), LAST]);
      expect(second.events).toEqual([tokensChanged('org_1'), LAST]);
    });

    it('stops delivering to a subscriber once it unsubscribes', async () => {
      const bus = await open();
      const leaving = listen(bus);
      const staying = listen(bus);
      await bus.publish(tokensChanged('org_1'));
      await staying.received(1);
      leaving.stop();
      await bus.publish(tokensChanged('org_2'));
      await bus.publish(LAST);
      await staying.received(3);
      expect(leaving.events).toEqual([tokensChanged('org_1')]);
    });

    it('keeps delivering to the other subscribers when one throws', async () => {
      const bus = await open();
      const thrower = vi.fn(() => {
        throw new Error('a broken cache');
      });
      bus.subscribe(thrower);
      const after = listen(bus);
      await bus.publish(tokensChanged('org_1'));
      await bus.publish(LAST);
      await after.received(2);
      expect(thrower).toHaveBeenCalledTimes(2);
      expect(after.events).toEqual([tokensChanged('org_1'), LAST]);
    });

    it('delivers every kind of event intact, in order', async () => {
      const bus = await open();
      const listener = listen(bus);
      const sent: KeywardEvent[] = [
        tokensChanged('org_1', ['tok_1', 'tok_2', 'tok_ünïcødé']),
        tokensChanged('org_1', []),
        { type: 'member.changed', organizationId: 'org_1', userId: 'usr_1' },
        { type: 'client.changed', organizationId: 'org_2', clientId: 'cli_1' },
        { type: 'organization.changed', organizationId: 'org_3' },
      ];
      for (const event of sent) await bus.publish(event);
      await listener.received(sent.length);
      expect(listener.events).toEqual(sent);
    });
  });
}
