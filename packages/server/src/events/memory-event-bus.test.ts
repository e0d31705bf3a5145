import { createMemoryEventBus } from './memory-event-bus.ts';
import { describeEventBus } from './event-bus-contract.ts';

describeEventBus('the memory event bus', async () => createMemoryEventBus());
