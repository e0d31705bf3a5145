import type { OwnerSnapshot, TokenRecord } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { RecordCompactor } from './record-compactor.ts';

// Each row read from storage arrives with fresh copies of its strings and lists.
function row(id: string, overrides: Partial<TokenRecord> = {}): TokenRecord {
  const copy = (value: string) => `${value} `.trimEnd();
  return {
    id,
    organizationId: copy('org_1'),
    kind: 'personal',
    owner: { type: 'user', id: copy('usr_1') },
    name: `token ${id}`,
    hint: 'kw_pat_…abcd',
    digest: `digest-${id}`,
    secretVersion: copy('v1'),
    scopes: [copy('scans:read'), copy('clearances:read')],
    permission: 'admin',
    resources: [{ id: copy('res_1'), type: 'group', name: 'Alpha' }],
    resourcesLimited: true,
    expiresAt: new Date('2027-01-01T00:00:00Z'),
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
    createdAt: new Date('2026-01-01T00:00:00Z'),
    lastUsedAt: null,
    lastUsedIp: null,
    ...overrides,
  };
}

const member = (role: OwnerSnapshot['role'] = 'admin'): OwnerSnapshot => ({ role, resourceIds: 'all', resources: [], email: 'ada@example.com' });

describe('RecordCompactor', () => {
  it('keeps every value of the token and its owner as it was', () => {
    const compactor = new RecordCompactor();
    const original = row('tok_1', { metadata: { team: 'scans' }, allowedIps: ['10.0.0.0/8'] });
    const { token, owner } = compactor.compact(original, member());
    expect(token).toEqual(original);
    expect(owner).toEqual(member());
  });

  it('shares the owner, scopes, resources and organization id between tokens of one owner', () => {
    const compactor = new RecordCompactor();
    const first = compactor.compact(row('tok_1'), member());
    const second = compactor.compact(row('tok_2'), member());
    expect(second.token.owner).toBe(first.token.owner);
    expect(second.token.scopes).toBe(first.token.scopes);
    expect(second.token.resources).toBe(first.token.resources);
    expect(second.token.metadata).toBe(first.token.metadata);
    expect(second.owner).toBe(first.owner);
    expect(second.token.id).not.toBe(first.token.id);
  });

  it('gives a changed owner access its own snapshot, never the old shared one', () => {
    const compactor = new RecordCompactor();
    const admin = compactor.compact(row('tok_1'), member('admin'));
    const demoted = compactor.compact(row('tok_2'), member('member'));
    expect(demoted.owner).not.toBe(admin.owner);
    expect(demoted.owner?.role).toBe('member');
  });

  it('freezes shared values, so a write to one token cannot leak into another', () => {
    const compactor = new RecordCompactor();
    const { token, owner } = compactor.compact(row('tok_1'), member());
    expect(() => token.scopes.push('tokens:manage')).toThrow(TypeError);
    expect(() => (token.metadata as Record<string, unknown>).x = 1).toThrow(TypeError);
    expect(Object.isFrozen(owner)).toBe(true);
    expect(compactor.compact(row('tok_2'), member()).token.scopes).toEqual(['scans:read', 'clearances:read']);
  });

  it('leaves the digest out only when asked (a token already under the current keyring version), keeping everything else', () => {
    const original = row('tok_1');
    const { token } = new RecordCompactor().compact(original, member(), { dropDigest: true });
    expect(token.digest).toBe('');
    expect({ ...token, digest: original.digest }).toEqual(original);
    expect(new RecordCompactor().compact(original, member()).token.digest).toBe(original.digest);
  });

  it('keeps a null owner (a removed member) null', () => {
    expect(new RecordCompactor().compact(row('tok_1'), null).owner).toBeNull();
  });
});
