// A bearer token's own restrictions (IP allowlist, expiry, rate limit, quota)
// bound every token it produces by create, PATCH or rotate. Otherwise a token
// pinned to one address, or expiring tomorrow, could mint an unpinned or
// year-long copy of its rights and walk away with it. A person (console
// session or password flow) is not bound: they are the source of the rights.
import { ForbiddenError } from '../errors.ts';
import { isCidrWithin } from '../net/cidr.ts';
import type { Actor, ActorToken, RateLimitSetting, Refill } from '../types.ts';

export interface TokenRestrictions {
  allowedIps: string[];
  expiresAt: Date | null;
  rateLimit: RateLimitSetting | null;
  remaining: number | null;
  refill: Refill | null;
}

/** The restrictions every token the actor produces must stay within; null for a person. */
export function callerRestrictions(actor: Actor): ActorToken | null {
  return actor.token;
}

export interface RestrictionInput {
  allowedIps?: string[] | undefined;
  rateLimit?: RateLimitSetting | null | undefined;
  remaining?: number | null | undefined;
  refill?: Refill | null | undefined;
}

/**
 * Settings a child token leaves out default to its creating token's own
 * restrictions, so the default never widens (like an empty resource list). An
 * explicit wider value (`allowedIps: []`, `rateLimit: null`...) is refused by
 * checkNoLooserThanCaller instead of being silently rewritten.
 */
export function inheritRestrictions<T extends RestrictionInput>(actor: Actor, input: T): T {
  const caller = callerRestrictions(actor);
  if (!caller) return input;
  const inheritsQuota = input.remaining === undefined && input.refill === undefined;
  return {
    ...input,
    allowedIps: input.allowedIps ?? (caller.allowedIps.length > 0 ? [...caller.allowedIps] : undefined),
    rateLimit: input.rateLimit === undefined ? caller.rateLimit : input.rateLimit,
    remaining: input.remaining === undefined ? caller.remaining : input.remaining,
    refill: inheritsQuota ? caller.refill : input.refill,
  };
}

/** A default expiry (none asked for) never outlives the creating token. */
export function capExpiry(actor: Actor, expiresAt: Date | null): Date | null {
  const limit = callerRestrictions(actor)?.expiresAt ?? null;
  if (!limit) return expiresAt;
  return expiresAt && expiresAt < limit ? expiresAt : limit;
}

const REFILL_RANK: Record<Refill['interval'], number> = { monthly: 0, daily: 1 };

function loosenings(caller: ActorToken, child: Partial<TokenRestrictions>): string[] {
  const found: string[] = [];
  if (child.allowedIps !== undefined && caller.allowedIps.length > 0) {
    if (child.allowedIps.length === 0) {
      found.push(`your token may only be used from ${caller.allowedIps.join(', ')}, so this token needs an IP allowlist within that`);
    } else {
      const outside = child.allowedIps.filter((cidr) => !caller.allowedIps.some((own) => isCidrWithin(cidr, own)));
      if (outside.length > 0) found.push(`${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} outside your token's IP allowlist (${caller.allowedIps.join(', ')})`);
    }
  }
  if (child.expiresAt !== undefined && caller.expiresAt && (child.expiresAt === null || child.expiresAt > caller.expiresAt)) {
    found.push(`your token expires at ${caller.expiresAt.toISOString()}, and this token may not outlive it`);
  }
  if (child.rateLimit !== undefined && caller.rateLimit) {
    const own = caller.rateLimit;
    // No more requests per window, and no shorter window: then no span of time allows more than the caller's.
    if (!child.rateLimit || child.rateLimit.limit > own.limit || child.rateLimit.windowSeconds < own.windowSeconds) {
      found.push(`your token is limited to ${own.limit} requests per ${own.windowSeconds} seconds, so this token needs a rate limit no looser`);
    }
  }
  if (child.remaining !== undefined && caller.remaining !== null && (child.remaining === null || child.remaining > caller.remaining)) {
    found.push(`your token has ${caller.remaining} quota credits left, so this token needs a quota of at most that`);
  }
  if (child.refill !== undefined && child.refill !== null && caller.remaining !== null) {
    const own = caller.refill;
    if (!own || child.refill.amount > own.amount || REFILL_RANK[child.refill.interval] > REFILL_RANK[own.interval]) {
      found.push(own ? `your token's quota refills ${own.amount} ${own.interval}, so this token's may refill no more or more often` : "your token's quota never refills, so this token's may not either");
    }
  }
  return found;
}

/**
 * Refuses (403) restrictions looser than the calling token's own. Only the
 * fields present are checked, so PATCH passes just what it changes.
 */
export function checkNoLooserThanCaller(actor: Actor, child: Partial<TokenRestrictions>): void {
  const caller = callerRestrictions(actor);
  if (!caller) return;
  const found = loosenings(caller, child);
  if (found.length > 0) throw new ForbiddenError(`A token cannot produce a less restricted token: ${found.join('; ')}.`);
}
