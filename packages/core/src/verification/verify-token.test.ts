import { describe, expect, it } from 'vitest';
import { buildScopeCatalog, DEMO_SCOPES } from '../scopes/scope-catalog.ts';
import type { TokenRecord } from '../types.ts';
import { clientIdOf, compileToken, decideVerification, isReusedAfterRotation, type OwnerSnapshot } from './verify-token.ts';

const catalog = buildScopeCatalog({ scopes: [...DEMO_SCOPES] });
const NOW = Date.parse('2026-06-01T12:00:00Z');
const OWNER: OwnerSnapshot = { role: 'owner', resourceIds: 'all', resources: [] };

function token(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: 'tok_1',
    organizationId: 'org_1',
    kind: 'personal',
    owner: { type: 'user', id: 'usr_1' },
    name: 'laptop',
    hint: 'kw_pat_…abcd',
    digest: 'd',
    secretVersion: 'v1',
    scopes: ['scans:read', 'clearances:read'],
    permission: 'admin',
    resources: [],
    resourcesLimited: false,
    expiresAt: new Date(NOW + 86_400_000),
    disabledAt: null,
    disabledBy: null,
    revokedAt: null,
    revokedReason: null,
    allowedIps: [],
    rateLimit: null,
    metadata: {},
    remaining: null,
    refill: null,
    lineageId: 'tok_1',
    rotatedFrom: null,
    rotatedAt: null,
    graceUntil: null,
    createdAt: new Date(NOW - 1000),
    lastUsedAt: null,
    lastUsedIp: null,
    ...overrides,
  };
}

const decide = (record: TokenRecord, question = {}, owner: OwnerSnapshot | null = OWNER) => decideVerification(compileToken(catalog, record, owner), question, NOW).code;

describe('decideVerification', () => {
  it('answers VALID with the effective rights capped by the owner’s current role', () => {
    const result = decideVerification(compileToken(catalog, token({ scopes: ['scans:*'] }), { role: 'viewer', resourceIds: 'all', resources: [] }), {}, NOW);
    expect(result).toMatchObject({ valid: true, code: 'VALID', token: { scopes: ['scans:read'], permission: 'viewer', resources: [] } });
  });

  it('answers NOT_FOUND for no token, an owner without access, or another organization', () => {
    expect(decideVerification(null, {}, NOW).code).toBe('NOT_FOUND');
    expect(decide(token(), {}, null)).toBe('NOT_FOUND');
    expect(decide(token(), { organizationId: 'org_2' })).toBe('NOT_FOUND');
  });

  it('answers REVOKED, EXPIRED and DISABLED in that order of precedence', () => {
    expect(decide(token({ revokedAt: new Date(NOW - 1), expiresAt: new Date(NOW - 1), disabledAt: new Date(NOW - 1) }))).toBe('REVOKED');
    expect(decide(token({ expiresAt: new Date(NOW), disabledAt: new Date(NOW - 1) }))).toBe('EXPIRED');
    expect(decide(token({ disabledAt: new Date(NOW - 1) }))).toBe('DISABLED');
  });

  it('keeps a rotated-out secret valid during its grace period only, then calls it reuse', () => {
    const inGrace = token({ rotatedAt: new Date(NOW - 1000), graceUntil: new Date(NOW + 1000) });
    expect(decide(inGrace)).toBe('VALID');
    const after = token({ rotatedAt: new Date(NOW - 1000), graceUntil: new Date(NOW) });
    expect(decide(after)).toBe('REVOKED');
    expect(isReusedAfterRotation(compileToken(catalog, after, OWNER), NOW)).toBe(true);
  });

  it('checks the address against the allowlist, IPv4-mapped IPv6 included, and refuses a missing address', () => {
    const limited = token({ allowedIps: ['10.0.0.0/8'] });
    expect(decide(limited, { ip: '10.2.3.4' })).toBe('VALID');
    expect(decide(limited, { ip: '::ffff:10.2.3.4' })).toBe('VALID');
    expect(decide(limited, { ip: '192.0.2.1' })).toBe('IP_NOT_ALLOWED');
    expect(decide(limited, {})).toBe('IP_NOT_ALLOWED');
  });

  it('requires every listed scope and a satisfied require check', () => {
    expect(decide(token(), { scopes: ['scans:read', 'clearances:read'] })).toBe('VALID');
    expect(decide(token(), { scopes: ['scans:write'] })).toBe('INSUFFICIENT_SCOPE');
    expect(decide(token(), { require: (held: ReadonlySet<string>) => held.has('reports:read') })).toBe('INSUFFICIENT_SCOPE');
  });

  it('answers FORBIDDEN_RESOURCE outside the grants, and asks the organization for an unlimited token', () => {
    const limited = token({ resources: [{ id: 'res_a', type: 'project', name: 'a' }], resourcesLimited: true });
    expect(decide(limited, { resource: 'res_a' })).toBe('VALID');
    expect(decide(limited, { resource: 'res_b' })).toBe('FORBIDDEN_RESOURCE');
    const exists = (_org: string, id: string) => id === 'res_b';
    expect(decide(token(), { resource: 'res_b', resourceExists: exists })).toBe('VALID');
    expect(decide(token(), { resource: 'res_c', resourceExists: exists })).toBe('FORBIDDEN_RESOURCE');
  });

  it('narrows the ranked grants to a limited owner’s resources, keeping the ranking', () => {
    const granted = token({
      resources: [
        { id: 'res_b', type: 'project', name: 'b' },
        { id: 'res_a', type: 'project', name: 'a' },
        { id: 'res_c', type: 'project', name: 'c' },
      ],
      resourcesLimited: true,
    });
    const owner: OwnerSnapshot = { role: 'member', resourceIds: ['res_a', 'res_b'], resources: [] };
    const result = decideVerification(compileToken(catalog, granted, owner), {}, NOW);
    expect(result.token?.resources.map((r) => r.id)).toEqual(['res_b', 'res_a']);
  });

  it('reaches no resource when every granted resource was deleted', () => {
    expect(decide(token({ resources: [], resourcesLimited: true }), { resource: 'res_a', resourceExists: () => true })).toBe('FORBIDDEN_RESOURCE');
  });
});

describe('compileToken', () => {
  it('keeps of the stored row only what decisions and answers read, so a cache of many tokens holds no last use, hint or rotation bookkeeping', () => {
    const stored = token({ lastUsedAt: new Date(NOW - 5000), lastUsedIp: '203.0.113.7', rotatedFrom: 'tok_0', revokedReason: null });
    const compiled = compileToken(catalog, stored, OWNER);
    expect(Object.keys(compiled).sort()).toEqual(
      [
        ...['allowedIps', 'digest', 'disabledAt', 'expiresAtMs', 'id', 'kind', 'lineageId', 'organizationId', 'owner', 'permission', 'rateLimit', 'refill', 'remaining', 'resources', 'resourcesLimited', 'revokedAt', 'scopes', 'secretVersion'],
        ...['access', 'createdAtSeconds', 'rotatedOutAtMs', 'scopeSet', 'resourceSet', 'ipMatcher', 'verified'],
        // A cache's bookkeeping slots, empty until the server counts a use.
        ...['usageSlot', 'lastUseSlot', 'cachedAtGeneration'],
      ].sort(),
    );
    expect([compiled.usageSlot, compiled.lastUseSlot]).toEqual([null, null]);
    // No Date is kept: the expiry is a number for decisions and an ISO string for answers.
    expect(compiled.expiresAtMs).toBe(stored.expiresAt?.getTime() ?? null);
    expect(compiled.verified.expiresAt).toBe(stored.expiresAt?.toISOString() ?? null);
    // In whole seconds, as introspection's `iat` wants it.
    expect(compiled.createdAtSeconds).toBe(Math.floor((NOW - 1000) / 1000));
    expect(clientIdOf(compiled)).toBeNull();
    expect(clientIdOf(compileToken(catalog, token({ kind: 'client', owner: { type: 'client', id: 'cli_1' } }), OWNER))).toBe('cli_1');
    expect(compiled.verified).toMatchObject({ id: 'tok_1', name: 'laptop', metadata: {} });
  });
});
