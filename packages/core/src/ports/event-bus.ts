/**
 * Invalidation events published after every lifecycle change, so caches in
 * every replica and SDK verifier can drop what they hold.
 *
 * @example
 * const stop = bus.subscribe((event) => { if (event.type === 'tokens.changed') cache.drop(event.tokenIds); });
 */
export type KeywardEvent =
  | { type: 'tokens.changed'; organizationId: string; tokenIds: string[] }
  | { type: 'member.changed'; organizationId: string; userId: string }
  | { type: 'client.changed'; organizationId: string; clientId: string }
  | { type: 'organization.changed'; organizationId: string };

export interface EventBus {
  publish(event: KeywardEvent): Promise<void>;
  /** Returns a function that unsubscribes. */
  subscribe(onEvent: (event: KeywardEvent) => void): () => void;
}
