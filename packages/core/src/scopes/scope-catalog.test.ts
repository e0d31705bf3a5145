import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ROLES, roleRank } from '../roles.ts';
import type { Role } from '../roles.ts';
import {
  BUILT_IN_SCOPES,
  DEMO_SCOPES,
  ScopeCatalogError,
  buildScopeCatalog,
  expandScopes,
  grantableScopes,
  isScopePattern,
  matchesScope,
  presetScopes,
  scopesAboveRole,
  unknownScopes,
} from './scope-catalog.ts';
import type { ScopeDefinition } from './scope-catalog.ts';

const demo = () => buildScopeCatalog({ scopes: [...DEMO_SCOPES] });
const role = fc.constantFrom(...ROLES);
const word = fc.constantFrom('scans', 'reports', 'alerts', 'hosts', 'read', 'write', 'delete', 'export', 'run');

/** A deployment catalog with random area:action names (never clashing with built-ins). */
const generatedScopes = fc.uniqueArray(
  fc.record({
    name: fc.tuple(word, word).map(([area, action]) => `${area}:${action}`),
    description: fc.constant('Generated scope.'),
    minRole: role,
  }),
  { minLength: 1, maxLength: 20, selector: (scope) => scope.name },
);

describe('buildScopeCatalog', () => {
  it('adds the built-in scopes before the deployment scopes', () => {
    const catalog = demo();
    expect(catalog.scopes.map((scope) => scope.name)).toEqual([
      ...BUILT_IN_SCOPES.map((scope) => scope.name),
      ...DEMO_SCOPES.map((scope) => scope.name),
    ]);
  });

  it('builds the default presets from the deployment scopes and defaults to "Read only"', () => {
    const catalog = demo();
    expect(catalog.defaultPreset).toBe('Read only');
    expect(catalog.presets.map((preset) => preset.name)).toEqual(['Read only', 'Read & write', 'Full access']);
    expect(presetScopes(catalog, 'Read only')).toEqual(['clearances:read', 'reports:read', 'scans:read', 'tokens:read']);
    expect(presetScopes(catalog, 'Read & write')).toEqual([
      'clearances:read',
      'clearances:write',
      'reports:read',
      'scans:read',
      'scans:write',
      'tokens:read',
      'tokens:write',
    ]);
    expect(presetScopes(catalog, 'Full access')).toEqual(
      [...DEMO_SCOPES.map((scope) => scope.name), 'tokens:read', 'tokens:write'].sort(),
    );
  });

  it('keeps deployment presets, which may use wildcards, and their default', () => {
    const catalog = buildScopeCatalog({
      scopes: [...DEMO_SCOPES],
      presets: [
        { name: 'Scanner', description: 'For CI', scopes: ['scans:*', 'reports:read'] },
        { name: 'Auditor', scopes: ['*:read'] },
      ],
      defaultPreset: 'Scanner',
    });
    expect(catalog.defaultPreset).toBe('Scanner');
    expect(presetScopes(catalog, 'Scanner')).toEqual(['reports:read', 'scans:read', 'scans:write']);
    expect(presetScopes(catalog, 'Auditor')).toContain('audit:read');
    expect(presetScopes(catalog, 'Nope')).toBeNull();
  });

  const scope = (name: string, minRole: Role = 'viewer'): ScopeDefinition => ({ name, description: 'x', minRole });

  it.each([
    ['a malformed name', { scopes: [scope('Scans:read')] }, /Scans:read/],
    ['a name without an action', { scopes: [scope('scans')] }, /"scans"/],
    ['a redefined built-in scope', { scopes: [scope('tokens:read')] }, /built in/],
    ['a duplicate scope', { scopes: [scope('scans:read'), scope('scans:read')] }, /declared twice/],
    ['an unknown minRole', { scopes: [{ name: 'scans:read', description: 'x', minRole: 'root' as Role }] }, /minRole/],
    ['a missing description', { scopes: [{ name: 'scans:read', description: '', minRole: 'viewer' as Role }] }, /description/],
    ['a preset scope matching nothing', { scopes: [scope('scans:read')], presets: [{ name: 'P', scopes: ['hosts:*'] }], defaultPreset: 'P' }, /"hosts:\*"/],
    ['a preset with a malformed pattern', { scopes: [scope('scans:read')], presets: [{ name: 'P', scopes: ['*:*'] }], defaultPreset: 'P' }, /"\*:\*"/],
    ['an empty preset', { scopes: [scope('scans:read')], presets: [{ name: 'P', scopes: [] }], defaultPreset: 'P' }, /Preset "P"/],
    ['duplicate presets', { scopes: [scope('scans:read')], presets: [{ name: 'P', scopes: ['scans:read'] }, { name: 'P', scopes: ['scans:read'] }], defaultPreset: 'P' }, /declared twice/],
    ['an empty preset list', { scopes: [scope('scans:read')], presets: [] }, /at least one preset/],
    ['a default preset that does not exist', { scopes: [scope('scans:read')], defaultPreset: 'Everything' }, /"Everything"/],
  ])('rejects %s with a one-line ScopeCatalogError naming it', (_label, input, message) => {
    expect(() => buildScopeCatalog(input)).toThrow(ScopeCatalogError);
    expect(() => buildScopeCatalog(input)).toThrow(message);
    try {
      buildScopeCatalog(input);
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
    }
  });
});

describe('isScopePattern', () => {
  it('accepts names and single wildcards', () => {
    for (const pattern of ['scans:read', 'scans:*', '*:read', 'a_b-c:d-e_f']) expect(isScopePattern(pattern)).toBe(true);
  });

  it('rejects the everything wildcards and malformed strings', () => {
    for (const pattern of ['*:*', '*', 'scans', 'scans:', ':read', 'scans:read:x', 'Scans:read', 'sc*:read', ' scans:read']) {
      expect(isScopePattern(pattern)).toBe(false);
    }
  });
});

describe('matchesScope', () => {
  it('matches a name only itself', () => {
    expect(matchesScope('scans:read', 'scans:read')).toBe(true);
    expect(matchesScope('scans:read', 'scans:write')).toBe(false);
  });

  it('never matches with a malformed pattern', () => {
    expect(matchesScope('*:*', 'scans:read')).toBe(false);
    expect(matchesScope('scans', 'scans:read')).toBe(false);
  });
});

describe('expandScopes', () => {
  it('expands area:* to exactly the scopes of that area', () => {
    fc.assert(
      fc.property(generatedScopes, word, (scopes, area) => {
        const catalog = buildScopeCatalog({ scopes, presets: [{ name: 'All', scopes: [scopes[0]!.name] }], defaultPreset: 'All' });
        const expected = catalog.scopes.map((scope) => scope.name).filter((name) => name.split(':')[0] === area);
        expect(expandScopes(catalog, [`${area}:*`])).toEqual([...expected].sort());
      }),
      { numRuns: 100 },
    );
  });

  it('expands *:action to exactly the scopes with that action', () => {
    fc.assert(
      fc.property(generatedScopes, fc.oneof(word, fc.constantFrom('manage', 'verify')), (scopes, action) => {
        const catalog = buildScopeCatalog({ scopes, presets: [{ name: 'All', scopes: [scopes[0]!.name] }], defaultPreset: 'All' });
        const expected = catalog.scopes.map((scope) => scope.name).filter((name) => name.split(':')[1] === action);
        expect(expandScopes(catalog, [`*:${action}`])).toEqual([...expected].sort());
      }),
      { numRuns: 100 },
    );
  });

  it('returns sorted unique catalog scopes and ignores unknown or malformed patterns', () => {
    expect(expandScopes(demo(), ['scans:read', 'scans:*', 'nope:read', '*:*', 'reports:read'])).toEqual([
      'reports:read',
      'scans:read',
      'scans:write',
    ]);
  });
});

describe('unknownScopes', () => {
  it('lists patterns that are malformed or match nothing, once each', () => {
    expect(unknownScopes(demo(), ['scans:read', 'scans:delete', 'bad', '*:*', 'hosts:*', 'scans:delete'])).toEqual([
      'scans:delete',
      'bad',
      '*:*',
      'hosts:*',
    ]);
  });

  it('lists nothing for catalog scopes and matching wildcards', () => {
    expect(unknownScopes(demo(), ['scans:read', 'clearances:*', '*:manage'])).toEqual([]);
  });
});

describe('grantableScopes and scopesAboveRole', () => {
  it('lets a viewer grant only viewer scopes', () => {
    expect(grantableScopes(demo(), 'viewer')).toEqual([
      'clearances:read',
      'reports:read',
      'scans:read',
      'tokens:read',
      'tokens:write',
    ]);
  });

  it('lets an owner grant every scope', () => {
    const catalog = demo();
    expect(grantableScopes(catalog, 'owner')).toEqual(catalog.scopes.map((scope) => scope.name).sort());
  });

  it('splits the matched scopes into grantable and above-role, for every role', () => {
    fc.assert(
      fc.property(generatedScopes, role, fc.array(word.map((area) => `${area}:*`), { maxLength: 3 }), (scopes, who, patterns) => {
        const catalog = buildScopeCatalog({ scopes, presets: [{ name: 'All', scopes: [scopes[0]!.name] }], defaultPreset: 'All' });
        const above = scopesAboveRole(catalog, patterns, who);
        const grantable = new Set(grantableScopes(catalog, who));
        const minRoles = new Map(catalog.scopes.map((scope) => [scope.name, scope.minRole]));
        for (const name of expandScopes(catalog, patterns)) {
          expect(above.includes(name)).toBe(!grantable.has(name));
          expect(above.includes(name)).toBe(roleRank(minRoles.get(name)!) > roleRank(who));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('names the admin-only scopes a member asked for', () => {
    expect(scopesAboveRole(demo(), ['clearances:*', 'tokens:*'], 'member')).toEqual(['clearances:write', 'tokens:manage']);
  });
});
