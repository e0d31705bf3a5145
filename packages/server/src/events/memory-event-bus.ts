import type { EventBus, KeywardEvent } from '@keyward/core';

/** The in-process bus for a single node; the Redis bus takes over across replicas. */
export function createMemoryEventBus(): EventBus {
  const listeners = new Set<(event: KeywardEvent) => void>();
  return {
    async publish(event) {
      for (const listener of listeners) {
        try {
          listener(event);
        } catch {
          // One failing subscriber must not stop the others from hearing about a revocation.
        }
      }
    },
    subscribe(onEvent) {
      listeners.add(onEvent);
      return () => listeners.delete(onEvent);
    },
  };
}
