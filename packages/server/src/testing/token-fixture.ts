// A stored token for storage tests and the bench, written straight through the store: a
// live personal token with no restrictions unless the overrides say otherwise.
import type { NewToken } from '@keyward/core';

export interface TokenFixtureBase {
  organizationId: string;
  userId: string;
  createdAt: Date;
}

export function newTokenFixture(id: string, base: TokenFixtureBase, overrides: Partial<NewToken> = {}): NewToken {
  return {
    id,
    organizationId: base.organizationId,
    kind: 'personal',
    owner: { type: 'user', id: base.userId },
    name: `token ${id}`,
    hint: `kw_pat_…${id.slice(-4)}`,
    digest: `digest_${id}`,
    secretVersion: 'v1',
    scopes: ['tokens:read'],
    permission: 'member',
    resourceIds: [],
    resourcesLimited: false,
    expiresAt: null,
    disabledAt: null,
    disabledBy: null,
    revokedAt: null,
    revokedReason: null,
    allowedIps: [],
    rateLimit: null,
    metadata: {},
    remaining: null,
    refill: null,
    lineageId: id,
    rotatedFrom: null,
    rotatedAt: null,
    graceUntil: null,
    createdAt: base.createdAt,
    ...overrides,
  };
}
