// What every lifecycle service needs, passed as one object so tests can swap
// the clock, the store or the bus.
import type { EventBus, KeywardEvent } from '../ports/event-bus.ts';
import type { PasswordHasher, Store } from '../ports/store.ts';
import type { ScopeCatalog } from '../scopes/scope-catalog.ts';
import type { Keyring } from '../tokens/keyring.ts';
import type { TokenPrefixes } from '../tokens/token-format.ts';
import { newId } from '../ids.ts';
import type { Actor, AuditEvent } from '../types.ts';

export interface ServiceDeps {
  store: Store;
  bus: EventBus;
  keyring: Keyring;
  catalog: ScopeCatalog;
  prefixes: TokenPrefixes;
  /**
   * Prefixes of keys imported from another system (`legacyTokenPrefixes`):
   * such keys skip the checksum pre-check and are looked up by digest.
   *
   * @example
   * legacyPrefixes: ['sk_live_', 'acme-']
   */
  legacyPrefixes?: readonly string[];
  passwords: PasswordHasher;
  now: () => Date;
  /** The same clock in milliseconds, without allocating a Date (read on every verification); `now` when absent. */
  nowMs?: () => number;
  /**
   * Told about a failure that must not fail the request it happened in (a
   * last-used write on a full disk, say); the server logs it.
   *
   * @example
   * reportError: (error, what) => log.warn({ err: error }, what)
   */
  reportError?: (error: unknown, what: string) => void;
}

export interface AuditInput {
  action: string;
  organizationId: string | null;
  target: AuditEvent['target'];
  details?: Record<string, unknown>;
}

/** The request facts an audit event records about whoever acted. */
export interface RequestFacts {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

export const SYSTEM_REQUEST: RequestFacts = { ip: null, userAgent: null, requestId: null };

export function auditActorOf(actor: Actor | null): AuditEvent['actor'] {
  if (!actor) return { type: 'system', id: null };
  if (actor.token) return { type: 'token', id: actor.token.id };
  if (actor.user) return { type: 'user', id: actor.user.id };
  return { type: 'system', id: null };
}

/** Builds an audit event for an action by `actor` (null = the system). */
export function auditEvent(deps: ServiceDeps, actor: Actor | null, input: AuditInput, request: RequestFacts = actor ?? SYSTEM_REQUEST): AuditEvent {
  const details = { ...input.details };
  // Keep who was behind a token, so a token's actions trace back to a person.
  if (actor?.token && actor.user) details.userId = actor.user.id;
  return {
    id: newId('evt'),
    at: deps.now(),
    action: input.action,
    actor: auditActorOf(actor),
    authMethod: actor?.authMethod ?? 'system',
    organizationId: input.organizationId,
    target: input.target,
    ip: request.ip,
    userAgent: request.userAgent,
    requestId: request.requestId,
    details,
  };
}

/** Publishing happens after commit; a failing bus must not undo an acknowledged change. */
export async function publishSafely(deps: ServiceDeps, event: KeywardEvent): Promise<void> {
  try {
    await deps.bus.publish(event);
  } catch (error) {
    // This process's caches already heard it (buses deliver locally first);
    // other replicas hear it when the bus is back (the Redis bus publishes it again
    // and drops their caches), at worst at their TTL. Never silent: the operator is told.
    deps.reportError?.(error, `could not publish ${event.type} to other replicas yet; they hear it when Redis is back, at worst at their cache TTL`);
  }
}
