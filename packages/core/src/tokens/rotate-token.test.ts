import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import type { ServiceDeps } from '../services/context.ts';
import type { Actor } from '../types.ts';
import { MAX_GRACE_PERIOD_SECONDS, rotateToken } from './rotate-token.ts';

// The check comes before any read: a store that is touched fails the test.
const untouchable = new Proxy({}, {
  get(_target, property) {
    throw new Error(`the store was used (${String(property)}) before the grace period was checked`);
  },
});
const deps = { store: untouchable, now: () => new Date('2026-01-05T10:00:00Z') } as unknown as ServiceDeps;

const actor: Actor = {
  organizationId: 'org_a',
  authMethod: 'session',
  user: { id: 'usr_a', role: 'owner', resourceIds: 'all' },
  token: null,
  scopes: ['tokens:write'],
  permission: 'owner',
  resourceIds: 'all',
  ip: null,
  userAgent: null,
  requestId: null,
};

describe('rotateToken', () => {
  it.each([-1, 1.5, MAX_GRACE_PERIOD_SECONDS + 1, Number.NaN, Number.POSITIVE_INFINITY])('refuses a grace period of %s seconds with a validation error naming gracePeriodSeconds', async (seconds) => {
    const failure = await rotateToken(deps, actor, 'tok_a', seconds).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ValidationError);
    expect((failure as ValidationError).errors).toEqual([{ field: 'gracePeriodSeconds', message: expect.stringContaining('86400') }]);
  });
});
