// Examples for the OpenAPI document, by operationId: what /docs shows and
// what client generators put in their docs. `npm run lint:openapi` checks each
// one against its operation's schema (Redocly's no-invalid-media-type-examples).
// The token below is a well-formed example, not a credential anywhere.

interface Example {
  summary: string;
  value: unknown;
}

export interface OperationExamples {
  /** Request body examples, by name. */
  request?: Record<string, Example>;
  /** Response examples, by status code, then by name. */
  responses?: Record<string, Record<string, Example>>;
}

const EXAMPLE_TOKEN = 'kw_pat_IxLinOi84kd9DvFfj8w0Fui7qODgc329Z67FAeePwmA0bNJCa';
const ORGANIZATION_ID = 'org_7Q2mV9xKc3LtB8rN1sDe';
const USER_ID = 'usr_4fQa8ZkP2nW6yHc0TgLm';
const TOKEN_ID = 'tok_9bXr3MeK1vQ7sJd5UaNp';

const token = {
  id: TOKEN_ID,
  name: 'ci deploy',
  hint: 'kw_pat_…NJCa',
  kind: 'personal',
  owner: { type: 'user', id: USER_ID },
  organizationId: ORGANIZATION_ID,
  scopes: ['scans:read', 'scans:write'],
  permission: 'member',
  resources: [{ id: 'res_2LkD8pQw5ZyR1cVb7NxM', type: 'project', name: 'billing' }],
  resourcesLimited: true,
  status: 'active',
  allowedIps: ['203.0.113.0/24'],
  rateLimit: { limit: 600, windowSeconds: 60 },
  metadata: { ticket: 'OPS-1234' },
  remaining: null,
  refill: null,
  createdAt: '2026-03-02T09:15:00.000Z',
  expiresAt: '2026-05-31T09:15:00.000Z',
  graceEndsAt: null,
  lastUsedAt: null,
  lastUsedIp: null,
  rotatedFrom: null,
};

const verifiedToken = {
  id: TOKEN_ID,
  name: token.name,
  kind: token.kind,
  owner: token.owner,
  organizationId: ORGANIZATION_ID,
  scopes: token.scopes,
  permission: token.permission,
  resources: token.resources,
  expiresAt: token.expiresAt,
  metadata: token.metadata,
};

export const OPERATION_EXAMPLES: Record<string, OperationExamples> = {
  createToken: {
    request: {
      withBearer: {
        summary: 'With a bearer token or a session',
        value: { name: 'ci deploy', scopes: ['scans:read', 'scans:write'], resources: ['res_2LkD8pQw5ZyR1cVb7NxM'], expiresInDays: 90, allowedIps: ['203.0.113.0/24'], rateLimit: { limit: 600, windowSeconds: 60 }, metadata: { ticket: 'OPS-1234' } },
      },
      headless: {
        summary: 'Headless, with email and password (no other credential)',
        value: { name: 'laptop cli', scopes: ['tokens:read'], expiresInDays: 30, email: 'ada@example.com', password: 'correct horse battery staple', organization: 'acme' },
      },
    },
    responses: {
      201: { created: { summary: 'The new token; `token` is the secret, shown this once', value: { ...token, token: EXAMPLE_TOKEN } } },
    },
  },
  verifyToken: {
    request: {
      scopes: { summary: 'Every listed scope is needed', value: { token: EXAMPLE_TOKEN, scopes: ['scans:read'], resource: 'res_2LkD8pQw5ZyR1cVb7NxM', ip: '203.0.113.7' } },
      require: { summary: 'A require expression', value: { token: EXAMPLE_TOKEN, require: 'scans:read AND (clearances:read OR clearances:write)', cost: 1 } },
    },
    responses: {
      200: {
        valid: { summary: 'Valid: the token, its effective grants and its rate-limit state', value: { valid: true, code: 'VALID', token: verifiedToken, rateLimit: { limit: 600, remaining: 599, resetAt: '2026-03-02T09:16:00.000Z' } } },
        revoked: { summary: 'Refused: branch on `code`', value: { valid: false, code: 'REVOKED' } },
        insufficientScope: { summary: 'Valid token, but not enough scope', value: { valid: false, code: 'INSUFFICIENT_SCOPE' } },
      },
    },
  },
  introspectToken: {
    request: { token: { summary: 'RFC 7662 form fields', value: { token: EXAMPLE_TOKEN, token_type_hint: 'access_token' } } },
    responses: {
      200: {
        active: {
          summary: 'An active token',
          value: {
            active: true,
            scope: 'scans:read scans:write',
            username: 'ada@example.com',
            token_type: 'Bearer',
            exp: 1780219300,
            iat: 1772442900,
            sub: USER_ID,
            organization_id: ORGANIZATION_ID,
            permission: 'member',
          },
        },
        inactive: { summary: 'Anything not valid (expired, revoked, unknown…)', value: { active: false } },
      },
    },
  },
  listTokens: {
    responses: { 200: { page: { summary: 'A page of tokens; pass nextCursor back as cursor', value: { items: [token], nextCursor: null } } } },
  },
  rotateToken: {
    request: { grace: { summary: 'Keep the old secret working for an hour', value: { gracePeriodSeconds: 3600 } } },
  },
};
