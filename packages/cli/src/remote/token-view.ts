// The token as the server's JSON describes it (GET /api/v1/tokens/{id}), and its text forms.
import { formatFields, formatInstant } from './text-output.ts';

export interface TokenView {
  id: string;
  name: string;
  hint: string;
  kind: 'personal' | 'client';
  owner: { type: 'user' | 'client'; id: string };
  organizationId: string;
  scopes: string[];
  permission: string;
  resources: Array<{ id: string; type: string; name: string }>;
  status: string;
  allowedIps: string[];
  rateLimit: { limit: number; windowSeconds: number } | null;
  metadata: Record<string, unknown>;
  remaining: number | null;
  refill: { amount: number; interval: string } | null;
  createdAt: string;
  expiresAt: string | null;
  graceEndsAt: string | null;
  lastUsedAt: string | null;
  lastUsedIp: string | null;
  rotatedFrom: string | null;
  /** GET /tokens/current only: what the token may do right now. */
  effective?: { scopes: string[]; permission: string; resources: string[] | null };
}

/** A token with its plaintext, as creation and rotation answer it once. */
export interface IssuedTokenView extends TokenView {
  token: string;
}

export function describeScopes(scopes: string[]): string {
  return scopes.length > 0 ? scopes.join(' ') : '(none)';
}

export function describeResources(resources: Array<{ id: string; type: string; name: string }>): string {
  return resources.length > 0 ? resources.map((resource, rank) => `${rank + 1}. ${resource.type}/${resource.name} (${resource.id})`).join(', ') : 'all its owner can access';
}

export function describeRateLimit(rateLimit: { limit: number; windowSeconds: number } | null): string {
  return rateLimit ? `${rateLimit.limit} per ${rateLimit.windowSeconds} s` : 'none';
}

function describeQuota(token: TokenView): string {
  if (token.remaining === null) return 'unlimited';
  return token.refill ? `${token.remaining} (refilled to ${token.refill.amount} ${token.refill.interval})` : String(token.remaining);
}

function describeMetadata(metadata: Record<string, unknown>): string {
  const entries = Object.entries(metadata);
  return entries.length > 0 ? entries.map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(', ') : '(none)';
}

/** Every field of one token, labelled. */
export function formatToken(token: TokenView): string {
  const fields: Array<[string, string]> = [
    ['id', token.id],
    ['name', token.name],
    ['hint', token.hint],
    ['kind', token.kind],
    ['owner', `${token.owner.type} ${token.owner.id}`],
    ['status', token.status],
    ['scopes', describeScopes(token.scopes)],
    ['permission', token.permission],
    ['resources', describeResources(token.resources)],
    ['allowed IPs', token.allowedIps.length > 0 ? token.allowedIps.join(', ') : 'any'],
    ['rate limit', describeRateLimit(token.rateLimit)],
    ['remaining', describeQuota(token)],
    ['metadata', describeMetadata(token.metadata)],
    ['created', formatInstant(token.createdAt, '-')],
    ['expires', formatInstant(token.expiresAt, 'never')],
  ];
  if (token.graceEndsAt) fields.push(['grace ends', formatInstant(token.graceEndsAt, '-')]);
  fields.push(['last used', token.lastUsedAt ? `${formatInstant(token.lastUsedAt, 'never')}${token.lastUsedIp ? ` from ${token.lastUsedIp}` : ''}` : 'never']);
  if (token.rotatedFrom) fields.push(['rotated from', token.rotatedFrom]);
  if (token.effective) {
    fields.push(['effective scopes', describeScopes(token.effective.scopes)]);
    fields.push(['effective permission', token.effective.permission]);
    fields.push(['effective resources', token.effective.resources === null ? 'all' : token.effective.resources.join(', ') || '(none)']);
  }
  return formatFields(fields);
}
