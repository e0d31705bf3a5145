import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ROLES, isRole, isRoleAtLeast, lowerRole, roleRank } from './roles.ts';

const role = fc.constantFrom(...ROLES);

describe('roles', () => {
  it('ranks viewer < member < admin < owner', () => {
    expect(ROLES.map(roleRank)).toEqual([0, 1, 2, 3]);
  });

  it('recognises only the four role names', () => {
    expect(ROLES.every(isRole)).toBe(true);
    for (const value of ['Owner', 'root', '', null, 3, undefined, ['admin']]) expect(isRole(value)).toBe(false);
  });

  it('compares a role against a minimum', () => {
    expect(isRoleAtLeast('admin', 'member')).toBe(true);
    expect(isRoleAtLeast('member', 'member')).toBe(true);
    expect(isRoleAtLeast('viewer', 'member')).toBe(false);
  });

  it('picks the lesser of two roles, whichever order they come in', () => {
    fc.assert(
      fc.property(role, role, (a, b) => {
        const lower = lowerRole(a, b);
        expect(lower).toBe(lowerRole(b, a));
        expect(roleRank(lower)).toBe(Math.min(roleRank(a), roleRank(b)));
      }),
    );
  });
});
