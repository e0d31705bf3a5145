import { describe, expect, it } from 'vitest';
import { ForbiddenError } from '../errors.ts';
import type { Actor, ActorToken } from '../types.ts';
import { capExpiry, checkNoLooserThanCaller, inheritRestrictions } from './token-restrictions.ts';
import type { TokenSettingsInput } from './token-settings.ts';

const named = (input: Omit<TokenSettingsInput, 'name'> = {}): TokenSettingsInput => ({ name: 'child', ...input });

const EXPIRY = new Date('2026-02-01T00:00:00Z');

function tokenActor(restrictions: Partial<ActorToken> = {}): Actor {
  return {
    organizationId: 'org_a',
    authMethod: 'personal_token',
    user: { id: 'usr_a', role: 'owner', resourceIds: 'all' },
    token: { id: 'tok_a', kind: 'personal', clientId: null, allowedIps: [], expiresAt: null, rateLimit: null, remaining: null, refill: null, ...restrictions },
    scopes: ['tokens:write'],
    permission: 'owner',
    resourceIds: 'all',
    ip: null,
    userAgent: null,
    requestId: null,
  };
}

const person: Actor = { ...tokenActor(), authMethod: 'session', token: null };

describe('checkNoLooserThanCaller', () => {
  it('binds nothing for a person, whatever the settings', () => {
    expect(() => checkNoLooserThanCaller(person, { allowedIps: [], expiresAt: null, rateLimit: null, remaining: null })).not.toThrow();
  });

  it('refuses an empty or wider allowlist from a pinned token, and accepts one inside it', () => {
    const pinned = tokenActor({ allowedIps: ['10.0.0.0/8'] });
    expect(() => checkNoLooserThanCaller(pinned, { allowedIps: [] })).toThrow(ForbiddenError);
    expect(() => checkNoLooserThanCaller(pinned, { allowedIps: ['10.0.0.0/8', '192.0.2.1/32'] })).toThrow(/192\.0\.2\.1\/32 is outside/);
    expect(() => checkNoLooserThanCaller(pinned, { allowedIps: ['10.1.0.0/16', '10.2.3.4/32'] })).not.toThrow();
  });

  it('refuses an expiry after the caller\'s or none at all', () => {
    const expiring = tokenActor({ expiresAt: EXPIRY });
    expect(() => checkNoLooserThanCaller(expiring, { expiresAt: null })).toThrow(/expires at/);
    expect(() => checkNoLooserThanCaller(expiring, { expiresAt: new Date(EXPIRY.getTime() + 1) })).toThrow(ForbiddenError);
    expect(() => checkNoLooserThanCaller(expiring, { expiresAt: EXPIRY })).not.toThrow();
  });

  it('refuses no rate limit, more requests per window or a shorter window', () => {
    const limited = tokenActor({ rateLimit: { limit: 10, windowSeconds: 60 } });
    for (const rateLimit of [null, { limit: 11, windowSeconds: 60 }, { limit: 10, windowSeconds: 59 }]) {
      expect(() => checkNoLooserThanCaller(limited, { rateLimit })).toThrow(ForbiddenError);
    }
    expect(() => checkNoLooserThanCaller(limited, { rateLimit: { limit: 10, windowSeconds: 3600 } })).not.toThrow();
  });

  it('refuses no quota, more credits, or a refill that is larger, more frequent or absent from the caller', () => {
    const metered = tokenActor({ remaining: 100, refill: { amount: 50, interval: 'monthly' } });
    expect(() => checkNoLooserThanCaller(metered, { remaining: null })).toThrow(ForbiddenError);
    expect(() => checkNoLooserThanCaller(metered, { remaining: 101 })).toThrow(ForbiddenError);
    expect(() => checkNoLooserThanCaller(metered, { remaining: 10, refill: { amount: 51, interval: 'monthly' } })).toThrow(ForbiddenError);
    expect(() => checkNoLooserThanCaller(metered, { remaining: 10, refill: { amount: 50, interval: 'daily' } })).toThrow(ForbiddenError);
    expect(() => checkNoLooserThanCaller(tokenActor({ remaining: 100 }), { remaining: 10, refill: { amount: 1, interval: 'monthly' } })).toThrow(/never refills/);
    expect(() => checkNoLooserThanCaller(metered, { remaining: 100, refill: { amount: 50, interval: 'monthly' } })).not.toThrow();
  });

  it('checks only the fields given, so a PATCH of other fields passes', () => {
    expect(() => checkNoLooserThanCaller(tokenActor({ allowedIps: ['10.0.0.0/8'], rateLimit: { limit: 1, windowSeconds: 1 } }), {})).not.toThrow();
  });
});

describe('inheritRestrictions', () => {
  it("fills in what a child leaves out from the caller's token, and keeps what it names", () => {
    const caller = tokenActor({ allowedIps: ['10.0.0.0/8'], rateLimit: { limit: 10, windowSeconds: 60 }, remaining: 5, refill: { amount: 5, interval: 'daily' } });
    expect(inheritRestrictions(caller, named())).toEqual({
      name: 'child',
      allowedIps: ['10.0.0.0/8'],
      rateLimit: { limit: 10, windowSeconds: 60 },
      remaining: 5,
      refill: { amount: 5, interval: 'daily' },
    });
    expect(inheritRestrictions(caller, named({ allowedIps: ['10.0.0.1'], remaining: 1 }))).toMatchObject({ allowedIps: ['10.0.0.1'], remaining: 1, refill: undefined });
  });

  it('changes nothing for a person', () => {
    expect(inheritRestrictions(person, named())).toEqual({ name: 'child' });
  });
});

describe('capExpiry', () => {
  it("caps at the caller's expiry, and leaves a person's alone", () => {
    const expiring = tokenActor({ expiresAt: EXPIRY });
    expect(capExpiry(expiring, null)).toEqual(EXPIRY);
    expect(capExpiry(expiring, new Date(EXPIRY.getTime() + 1000))).toEqual(EXPIRY);
    expect(capExpiry(expiring, new Date(EXPIRY.getTime() - 1000))).toEqual(new Date(EXPIRY.getTime() - 1000));
    expect(capExpiry(person, null)).toBeNull();
  });
});
