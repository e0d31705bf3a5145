import { isRole, isRoleAtLeast, roleRank } from '../roles.ts';
import type { Role } from '../roles.ts';

export interface ScopeDefinition {
  name: string;
  description: string;
  /** The lowest role that may grant this scope to a token. */
  minRole: Role;
}

export interface ScopePreset {
  name: string;
  description?: string;
  /** Scope names or wildcard patterns (`area:*`, `*:action`). */
  scopes: string[];
}

export interface ScopeCatalog {
  /** Built-in scopes first, then the deployment's. */
  scopes: readonly ScopeDefinition[];
  presets: readonly ScopePreset[];
  defaultPreset: string;
}

export class ScopeCatalogError extends Error {
  override name = 'ScopeCatalogError';
}

export const BUILT_IN_SCOPES: readonly ScopeDefinition[] = Object.freeze([
  { name: 'tokens:read', description: 'Read your own tokens.', minRole: 'viewer' },
  { name: 'tokens:write', description: 'Create, change, rotate and revoke your own tokens.', minRole: 'viewer' },
  { name: 'tokens:manage', description: 'Manage every token in the organization.', minRole: 'admin' },
  { name: 'clients:manage', description: 'Manage API clients and their service tokens.', minRole: 'admin' },
  { name: 'members:manage', description: 'Manage members, resources and organization policy.', minRole: 'admin' },
  { name: 'audit:read', description: 'Read the organization audit log and usage.', minRole: 'admin' },
  { name: 'keyward:verify', description: 'Verify tokens on behalf of a resource server.', minRole: 'admin' },
] satisfies ScopeDefinition[]);

/** The example deployment's scopes (a security-scanning API), used by the demo config and tests. */
export const DEMO_SCOPES: readonly ScopeDefinition[] = Object.freeze([
  { name: 'scans:read', description: 'List scans and read their results.', minRole: 'viewer' },
  { name: 'scans:write', description: 'Start, schedule and cancel scans.', minRole: 'member' },
  { name: 'clearances:read', description: 'Read clearance groups and their decisions.', minRole: 'viewer' },
  { name: 'clearances:write', description: 'Create and change clearance groups and decisions.', minRole: 'admin' },
  { name: 'reports:read', description: 'Download generated reports.', minRole: 'viewer' },
] satisfies ScopeDefinition[]);

const PART = '[a-z][a-z0-9_-]{0,31}';
const SCOPE_NAME_RE = new RegExp(`^${PART}:${PART}$`);
const PATTERN_PART_RE = new RegExp(`^(?:${PART}|\\*)$`);

export function isScopeName(s: string): boolean {
  return typeof s === 'string' && SCOPE_NAME_RE.test(s);
}

/** `area:action`, `area:*` or `*:action`; never `*:*` or `*`, so no token grants everything by accident. */
export function isScopePattern(s: string): boolean {
  if (typeof s !== 'string') return false;
  const parts = s.split(':');
  if (parts.length !== 2) return false;
  const [area, action] = parts as [string, string];
  if (area === '*' && action === '*') return false;
  return PATTERN_PART_RE.test(area) && PATTERN_PART_RE.test(action);
}

export function matchesScope(pattern: string, scope: string): boolean {
  if (!isScopePattern(pattern) || !isScopeName(scope)) return false;
  const [patternArea, patternAction] = pattern.split(':') as [string, string];
  const [area, action] = scope.split(':') as [string, string];
  return (patternArea === '*' || patternArea === area) && (patternAction === '*' || patternAction === action);
}

/** Sorted, unique catalog scopes matched by any of the patterns; malformed patterns match nothing. */
export function expandScopes(catalog: ScopeCatalog, patterns: readonly string[]): string[] {
  const matched = catalog.scopes
    .filter((scope) => patterns.some((pattern) => matchesScope(pattern, scope.name)))
    .map((scope) => scope.name);
  return [...new Set(matched)].sort();
}

/** Patterns that are malformed or match no catalog scope, in input order, each once. */
export function unknownScopes(catalog: ScopeCatalog, patterns: readonly string[]): string[] {
  const unknown = patterns.filter(
    (pattern) => !catalog.scopes.some((scope) => matchesScope(pattern, scope.name)),
  );
  return [...new Set(unknown)];
}

/** Sorted concrete scopes a member with `role` may put on a token. */
export function grantableScopes(catalog: ScopeCatalog, role: Role): string[] {
  return catalog.scopes
    .filter((scope) => isRoleAtLeast(role, scope.minRole))
    .map((scope) => scope.name)
    .sort();
}

/** Sorted concrete scopes matched by the patterns that `role` may not grant. */
export function scopesAboveRole(catalog: ScopeCatalog, patterns: readonly string[], role: Role): string[] {
  const rank = roleRank(role);
  const minRoles = new Map(catalog.scopes.map((scope) => [scope.name, scope.minRole]));
  return expandScopes(catalog, patterns).filter((name) => roleRank(minRoles.get(name)!) > rank);
}

/** The concrete, sorted scopes a preset stands for, or null for an unknown preset. */
export function presetScopes(catalog: ScopeCatalog, presetName: string): string[] | null {
  const preset = catalog.presets.find((candidate) => candidate.name === presetName);
  return preset ? expandScopes(catalog, preset.scopes) : null;
}

function actionOf(scopeName: string): string {
  return scopeName.slice(scopeName.indexOf(':') + 1);
}

function defaultPresets(deploymentScopes: readonly ScopeDefinition[]): ScopePreset[] {
  const names = deploymentScopes.map((scope) => scope.name);
  const reads = names.filter((name) => actionOf(name) === 'read');
  const readWrites = names.filter((name) => ['read', 'write'].includes(actionOf(name)));
  return [
    {
      name: 'Read only',
      description: 'Read everything, change nothing.',
      scopes: [...reads, 'tokens:read'].sort(),
    },
    {
      name: 'Read & write',
      description: 'Read and write, without the rarer actions.',
      scopes: [...readWrites, 'tokens:read', 'tokens:write'].sort(),
    },
    {
      name: 'Full access',
      description: 'Every deployment scope, without organization administration.',
      scopes: [...names, 'tokens:read', 'tokens:write'].sort(),
    },
  ];
}

function checkScope(scope: ScopeDefinition, index: number, seen: Set<string>): ScopeDefinition {
  const label = typeof scope?.name === 'string' ? `Scope "${scope.name}"` : `Scope #${index + 1}`;
  if (typeof scope?.name !== 'string' || !isScopeName(scope.name)) {
    throw new ScopeCatalogError(`${label}: name must look like "area:action" (lowercase, up to 32 characters each)`);
  }
  if (BUILT_IN_SCOPES.some((builtIn) => builtIn.name === scope.name)) {
    throw new ScopeCatalogError(`${label} is built in and cannot be redefined`);
  }
  if (seen.has(scope.name)) throw new ScopeCatalogError(`${label} is declared twice`);
  if (typeof scope.description !== 'string' || scope.description.trim() === '') {
    throw new ScopeCatalogError(`${label} needs a description`);
  }
  if (!isRole(scope.minRole)) {
    throw new ScopeCatalogError(`${label}: minRole must be one of viewer, member, admin, owner`);
  }
  seen.add(scope.name);
  return Object.freeze({ name: scope.name, description: scope.description, minRole: scope.minRole });
}

function checkPreset(
  preset: ScopePreset,
  index: number,
  allScopes: readonly ScopeDefinition[],
  seen: Set<string>,
): ScopePreset {
  if (typeof preset?.name !== 'string' || preset.name.trim() === '') {
    throw new ScopeCatalogError(`Preset #${index + 1} needs a name`);
  }
  const label = `Preset "${preset.name}"`;
  if (seen.has(preset.name)) throw new ScopeCatalogError(`${label} is declared twice`);
  if (!Array.isArray(preset.scopes) || preset.scopes.length === 0) {
    throw new ScopeCatalogError(`${label} must list at least one scope`);
  }
  for (const pattern of preset.scopes) {
    if (!isScopePattern(pattern)) {
      throw new ScopeCatalogError(`${label}: "${String(pattern)}" is not a scope or wildcard pattern`);
    }
    if (!allScopes.some((scope) => matchesScope(pattern, scope.name))) {
      throw new ScopeCatalogError(`${label}: "${pattern}" matches no scope in the catalog`);
    }
  }
  if (preset.description !== undefined && typeof preset.description !== 'string') {
    throw new ScopeCatalogError(`${label}: description must be text`);
  }
  seen.add(preset.name);
  const checked: ScopePreset = { name: preset.name, scopes: [...new Set(preset.scopes)] };
  if (preset.description !== undefined) checked.description = preset.description;
  return Object.freeze(checked);
}

/**
 * Validates a deployment's scopes and presets and adds the built-in scopes.
 * @example buildScopeCatalog({ scopes: [...DEMO_SCOPES] }) // default presets, "Read only" by default
 */
export function buildScopeCatalog(input: {
  scopes: ScopeDefinition[];
  presets?: ScopePreset[];
  defaultPreset?: string;
}): ScopeCatalog {
  if (!Array.isArray(input?.scopes)) throw new ScopeCatalogError('Scope catalog needs a "scopes" list');
  const seenScopes = new Set<string>();
  const deploymentScopes = input.scopes.map((scope, index) => checkScope(scope, index, seenScopes));
  const allScopes = Object.freeze([...BUILT_IN_SCOPES, ...deploymentScopes]);

  if (input.presets !== undefined && (!Array.isArray(input.presets) || input.presets.length === 0)) {
    throw new ScopeCatalogError('"presets" must list at least one preset (omit it for the default presets)');
  }
  const seenPresets = new Set<string>();
  const presets = Object.freeze(
    (input.presets ?? defaultPresets(deploymentScopes)).map((preset, index) =>
      checkPreset(preset, index, allScopes, seenPresets),
    ),
  );

  const defaultPreset = input.defaultPreset ?? 'Read only';
  if (!seenPresets.has(defaultPreset)) {
    throw new ScopeCatalogError(`Default preset "${defaultPreset}" is not one of the presets`);
  }
  return Object.freeze({ scopes: allScopes, presets, defaultPreset });
}
