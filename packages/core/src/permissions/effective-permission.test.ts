import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ROLES, roleRank } from '../roles.ts';
import { DEMO_SCOPES, buildScopeCatalog, grantableScopes } from '../scopes/scope-catalog.ts';
import { effectivePermission, hasScope } from './effective-permission.ts';
import type { OwnerAccess, TokenGrant } from './effective-permission.ts';

const catalog = buildScopeCatalog({ scopes: [...DEMO_SCOPES] });
const role = fc.constantFrom(...ROLES);
const resourceId: fc.Arbitrary<string> = fc.constantFrom('res_a', 'res_b', 'res_c', 'res_d', 'res_e');
const scopePattern = fc.constantFrom(...catalog.scopes.map((scope) => scope.name), 'scans:*', 'tokens:*', '*:read', '*:write', '*:manage');
const grant = fc.record({
  scopes: fc.array(scopePattern, { maxLength: 6 }),
  permission: role,
  resourceIds: fc.uniqueArray(resourceId, { maxLength: 5 }),
});
const owner = fc.record({
  role,
  resourceIds: fc.oneof(fc.constant('all' as const), fc.uniqueArray(resourceId, { maxLength: 5 })),
});

describe('effectivePermission', () => {
  it('never returns a scope the owner’s current role may not grant', () => {
    fc.assert(
      fc.property(grant, owner, (tokenGrant: TokenGrant, access: OwnerAccess) => {
        const grantable = new Set(grantableScopes(catalog, access.role));
        for (const scope of effectivePermission(catalog, tokenGrant, access).scopes) {
          expect(grantable.has(scope)).toBe(true);
        }
      }),
    );
  });

  it('caps the permission level at the owner’s current role', () => {
    fc.assert(
      fc.property(grant, owner, (tokenGrant, access) => {
        const { permission } = effectivePermission(catalog, tokenGrant, access);
        expect(roleRank(permission)).toBe(Math.min(roleRank(tokenGrant.permission), roleRank(access.role)));
      }),
    );
  });

  it('never returns a resource the owner lacks and keeps the token’s ranking', () => {
    fc.assert(
      fc.property(grant, owner, (tokenGrant, access) => {
        const { resourceIds } = effectivePermission(catalog, tokenGrant, access);
        if (resourceIds === 'all') {
          expect(access.resourceIds).toBe('all');
          expect(tokenGrant.resourceIds).toEqual([]);
          return;
        }
        if (access.resourceIds !== 'all') {
          for (const id of resourceIds) expect(access.resourceIds).toContain(id);
        }
        if (tokenGrant.resourceIds.length > 0) {
          const ranks = resourceIds.map((id) => tokenGrant.resourceIds.indexOf(id));
          expect(ranks.every((rank) => rank >= 0)).toBe(true);
          expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
        }
      }),
    );
  });

  it('narrows an existing token at once when its owner is demoted', () => {
    const tokenGrant: TokenGrant = { scopes: ['clearances:*', 'scans:*'], permission: 'admin', resourceIds: [] };
    const before = effectivePermission(catalog, tokenGrant, { role: 'admin', resourceIds: 'all' });
    const after = effectivePermission(catalog, tokenGrant, { role: 'viewer', resourceIds: 'all' });
    expect(before).toEqual({
      scopes: ['clearances:read', 'clearances:write', 'scans:read', 'scans:write'],
      permission: 'admin',
      resourceIds: 'all',
    });
    expect(after).toEqual({ scopes: ['clearances:read', 'scans:read'], permission: 'viewer', resourceIds: 'all' });
  });

  it('drops a removed resource from the grant and keeps the rest in ranking order', () => {
    const tokenGrant: TokenGrant = { scopes: ['clearances:read'], permission: 'viewer', resourceIds: ['res_c', 'res_a', 'res_b'] };
    const result = effectivePermission(catalog, tokenGrant, { role: 'member', resourceIds: ['res_a', 'res_c'] });
    expect(result.resourceIds).toEqual(['res_c', 'res_a']);
  });

  it('gives an empty grant the owner’s current resources', () => {
    const tokenGrant: TokenGrant = { scopes: ['scans:read'], permission: 'viewer', resourceIds: [] };
    expect(effectivePermission(catalog, tokenGrant, { role: 'member', resourceIds: ['res_b'] }).resourceIds).toEqual(['res_b']);
    expect(effectivePermission(catalog, tokenGrant, { role: 'member', resourceIds: 'all' }).resourceIds).toBe('all');
  });

  it('leaves no resource when none of the granted ones remain', () => {
    const tokenGrant: TokenGrant = { scopes: ['scans:read'], permission: 'viewer', resourceIds: ['res_a'] };
    expect(effectivePermission(catalog, tokenGrant, { role: 'member', resourceIds: ['res_b'] }).resourceIds).toEqual([]);
  });

  it('ignores granted scopes that left the catalog', () => {
    const tokenGrant: TokenGrant = { scopes: ['legacy:read', 'scans:read'], permission: 'viewer', resourceIds: [] };
    expect(effectivePermission(catalog, tokenGrant, { role: 'owner', resourceIds: 'all' }).scopes).toEqual(['scans:read']);
  });
});

describe('hasScope', () => {
  it('answers whether a concrete scope is in the effective set', () => {
    const effective = effectivePermission(catalog, { scopes: ['scans:*'], permission: 'member', resourceIds: [] }, { role: 'member', resourceIds: 'all' });
    expect(hasScope(effective, 'scans:write')).toBe(true);
    expect(hasScope(effective, 'reports:read')).toBe(false);
  });
});
