// A minimal valid request body for every protected operation that takes one,
// keyed "METHOD /path" as the OpenAPI document names it: the route security
// suite sends them so its id checks reach the handler, and the hostile-input
// suite swaps their fields for anything.
import { generateToken } from '@keyward/core';

export const VALID_BODIES: Readonly<Record<string, Record<string, unknown>>> = {
  'POST /api/v1/tokens': { name: 'probe', scopes: ['tokens:read'] },
  'POST /api/v1/tokens/revoke-leaked': { tokens: [generateToken('kw_pat')] },
  'POST /api/v1/tokens/import': { records: [{ externalId: 'probe-1', plaintext: generateToken('kw_pat'), owner: { email: 'owner@example.com' }, name: 'probe', scopes: ['tokens:read'] }], dryRun: true },
  'POST /api/v1/verify': { token: generateToken('kw_pat') },
  'POST /oauth/introspect': { token: generateToken('kw_pat') },
  'PATCH /api/v1/tokens/{id}': { name: 'renamed' },
  'POST /api/v1/tokens/{id}/rotate': { gracePeriodSeconds: 0 },
  'POST /api/v1/clients': { name: 'probe' },
  'PATCH /api/v1/clients/{id}': { description: 'changed' },
  'POST /api/v1/clients/{id}/tokens': { name: 'probe', scopes: ['tokens:read'] },
  'POST /api/v1/members': { email: 'probe@example.com', role: 'viewer' },
  'PATCH /api/v1/members/{userId}': { role: 'viewer' },
  'POST /api/v1/resources': { type: 'site', name: 'probe' },
  'POST /api/v1/organizations': { name: 'Probe', slug: 'probe' },
  'PATCH /api/v1/organizations/current': { name: 'Acme' },
  'POST /api/v1/webhooks': { url: 'https://hooks.example.com/probe', events: ['token.created'] },
  'PATCH /api/v1/webhooks/{id}': { description: 'changed' },
};
