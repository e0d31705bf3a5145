// TypeBox schemas: they validate requests, type the handlers and generate the
// OpenAPI document, so the three can never disagree.
import Type, { type TSchema } from 'typebox';
import { MAX_PAGE_LIMIT } from '@keyward/core';

const strict = { additionalProperties: false } as const;

const components = new Map<string, TSchema>();

/**
 * Names a shared schema: it gets `$id` = name, and the OpenAPI document lists
 * it once under components/schemas and refers to it everywhere else, so
 * generated clients get a `Token` type rather than one anonymous copy per
 * operation. Validation and serialization read the same schema as before; a
 * JSON Schema `$id` must be unique within a document, so name only schemas
 * that appear at most once inside any one request or response schema.
 */
export function named<T extends TSchema>(name: string, schema: T): T & { $id: string } {
  if (components.has(name)) throw new Error(`Two schemas are named ${name}.`);
  const identified = Object.assign(schema, { $id: name });
  components.set(name, identified);
  return identified;
}

/** Every named schema so far, by name: every route module has been imported by the time the document is built. */
export function namedSchemas(): Record<string, TSchema> {
  return Object.fromEntries(components);
}

export const RoleSchema = Type.Union([Type.Literal('viewer'), Type.Literal('member'), Type.Literal('admin'), Type.Literal('owner')]);
export const Id = Type.String({ pattern: '^[a-z]{3}_[0-9A-Za-z]{1,64}$', maxLength: 68 });
export const IdParams = Type.Object({ id: Id }, strict);
export const UserIdParams = Type.Object({ userId: Id }, strict);
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 });
const Password = Type.String({ minLength: 1, maxLength: 1024 });
const NewPassword = Type.String({ minLength: 12, maxLength: 1024, description: 'At least 12 characters.' });
const OrganizationRef = Type.String({ minLength: 1, maxLength: 68, description: 'Organization id or slug.' });

export const TokenName = Type.String({ pattern: '^[A-Za-z0-9 ._-]{1,64}$', description: 'Unique per owner among live tokens.' });
const ScopeList = Type.Array(Type.String({ minLength: 3, maxLength: 65 }), { maxItems: 100, description: '`area:action`, `area:*` or `*:action` from the scope catalog.' });
const ResourceIdList = Type.Array(Id, { maxItems: 100, description: 'Ranked resource ids: the first grant that applies wins. Empty = all the owner can access.' });
const AllowedIps = Type.Array(Type.String({ minLength: 2, maxLength: 64 }), { maxItems: 100, description: 'IPv4/IPv6 addresses or CIDR ranges.' });
const RateLimit = Type.Union([
  Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1_000_000 }), windowSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }) }, strict),
  Type.Null(),
]);
const Refill = Type.Union([
  Type.Object({ amount: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }), interval: Type.Union([Type.Literal('daily'), Type.Literal('monthly')]) }, strict),
  Type.Null(),
]);
// TypeBox drops a string key's own limits from a Record, so the key rule is spelled as propertyNames.
const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  maxProperties: 50,
  propertyNames: { minLength: 1, maxLength: 64 },
  description: 'Small JSON object: at most 50 keys of 1-64 characters, 4 KiB in all.',
});

const tokenSettings = {
  name: TokenName,
  scopes: Type.Optional(ScopeList),
  resources: Type.Optional(ResourceIdList),
  permission: Type.Optional(RoleSchema),
  expiresInDays: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 3650 }), Type.Null()], { description: 'Within the organization policy; null = never, where allowed.' })),
  allowedIps: Type.Optional(AllowedIps),
  rateLimit: Type.Optional(RateLimit),
  remaining: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 }), Type.Null()])),
  refill: Type.Optional(Refill),
  metadata: Type.Optional(Metadata),
};

export const CreateTokenBody = named(
  'CreateTokenRequest',
  Type.Object(
    {
      ...tokenSettings,
      email: Type.Optional(Email),
      password: Type.Optional(Password),
      organization: Type.Optional(OrganizationRef),
    },
    { ...strict, description: 'With a session or bearer token; or headless with email + password.' },
  ),
);

export const CreateClientTokenBody = named('CreateClientTokenRequest', Type.Object(tokenSettings, strict));

export const PatchTokenBody = named('UpdateTokenRequest', Type.Object(
  {
    name: Type.Optional(TokenName),
    scopes: Type.Optional(ScopeList),
    resources: Type.Optional(ResourceIdList),
    enabled: Type.Optional(Type.Boolean()),
    allowedIps: Type.Optional(AllowedIps),
    rateLimit: Type.Optional(RateLimit),
    metadata: Type.Optional(Metadata),
    remaining: tokenSettings.remaining,
    refill: tokenSettings.refill,
  },
  { ...strict, minProperties: 1 },
));

export const RotateTokenBody = named(
  'RotateTokenRequest',
  Type.Union([Type.Object({ gracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400, default: 0 })) }, strict), Type.Null()], {
    description: 'Optional: no body (or null) rotates with no grace period.',
  }),
);

export const RevokeLeakedBody = named(
  'ReportLeakedTokensRequest',
  Type.Object({ tokens: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 1000, description: 'Strings found where they should not be.' }) }, strict),
);

// Import (issue 13): existing keys from another system. The batch is validated whole
// here; the domain then judges each record (created, skipped or failed with field errors).
const ImportOwner = Type.Union(
  [Type.Object({ email: Email }, strict), Type.Object({ userId: Id }, strict), Type.Object({ clientId: Id }, strict)],
  { description: 'A member of the organization (by email or user id), or an API client for a service token.' },
);
export const ImportTokenRecord = named('ImportTokenRecord', Type.Object(
  {
    externalId: Type.String({ pattern: '^[!-~]{1,200}$', description: "The key's stable id in the old system (1-200 visible characters): a record whose externalId is already imported is skipped." }),
    plaintext: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'The key itself: a Keyward token, or a key with a configured legacy prefix. Hashed under the keyring at once.' })),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'Instead of plaintext: the hex SHA-256 of the whole key, as other key services store it. Re-hashed under the keyring on first use.' })),
    prefix: Type.Optional(Type.String({ minLength: 2, maxLength: 32, description: 'With sha256: the configured legacy prefix the key starts with.' })),
    owner: ImportOwner,
    name: TokenName,
    scopes: Type.Array(Type.String({ minLength: 3, maxLength: 65 }), { minItems: 1, maxItems: 100, description: 'Scopes the importer and the owner can both grant.' }),
    resources: Type.Optional(ResourceIdList),
    permission: Type.Optional(RoleSchema),
    expiresAt: Type.Optional(Type.Union([Timestamp, Type.Null()], { description: 'Absent or null = never, where the organization allows it; else within its maximum lifetime.' })),
    allowedIps: Type.Optional(AllowedIps),
    metadata: Type.Optional(Metadata),
  },
  { ...strict, description: 'One existing key: exactly one of plaintext and sha256.' },
));
export const ImportTokensBody = named('ImportTokensRequest', Type.Object(
  {
    records: Type.Array(ImportTokenRecord, { minItems: 1, maxItems: 1000 }),
    dryRun: Type.Optional(Type.Boolean({ description: 'Judge every record and write nothing.' })),
  },
  strict,
));
const FieldErrors = Type.Array(Type.Object({ field: Type.String(), message: Type.String() }));
export const ImportTokensResponse = named('ImportTokensResult', Type.Object({
  dryRun: Type.Boolean(),
  created: Type.Integer({ description: 'Records imported (with dryRun: that would be).' }),
  skipped: Type.Integer({ description: 'Records whose externalId was already imported: left as they are.' }),
  failed: Type.Integer(),
  results: Type.Array(
    Type.Object({
      index: Type.Integer({ description: 'Position of the record in `records`, from 0.' }),
      externalId: Type.String(),
      status: Type.Union([Type.Literal('created'), Type.Literal('skipped'), Type.Literal('failed')]),
      tokenId: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'The new or existing token; null in a dry run.' })),
      errors: Type.Optional(FieldErrors),
    }),
    { description: 'One per record, in order. Never a key or a hash.' },
  ),
}));

const TokenStatusSchema = Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked'), Type.Literal('disabled')]);
const Limit = Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: 50 });
const Cursor = Type.String({ minLength: 1, maxLength: 200 });

export const ListTokensQuery = Type.Object(
  {
    all: Type.Optional(Type.Boolean({ description: 'Every token of the organization (needs tokens:manage).' })),
    status: Type.Optional(TokenStatusSchema),
    kind: Type.Optional(Type.Union([Type.Literal('personal'), Type.Literal('client')])),
    client: Type.Optional(Id),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  strict,
);

export const PageQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, strict);

export const AuditQuery = Type.Object(
  {
    action: Type.Optional(Type.String({ maxLength: 64 })),
    actor: Type.Optional(Type.String({ maxLength: 68 })),
    target: Type.Optional(Type.String({ maxLength: 68 })),
    since: Type.Optional(Timestamp),
    until: Type.Optional(Timestamp),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  strict,
);

export const LoginBody = named('LoginRequest', Type.Object({ email: Email, password: Password }, strict));
export const AcceptInviteBody = named('AcceptInviteRequest', Type.Object(
  {
    inviteToken: Type.String({ minLength: 20, maxLength: 100 }),
    password: Type.Optional(Type.String({ minLength: 12, maxLength: 1024, description: 'For a new person: the password to sign in with (at least 12 characters). Someone with an account accepts signed in, without it.' })),
  },
  strict,
));
export const SetupBody = named('SetupRequest', Type.Object(
  {
    setupToken: Type.String({ minLength: 20, maxLength: 100 }),
    email: Email,
    password: NewPassword,
    organizationName: Type.String({ minLength: 1, maxLength: 100 }),
    organizationSlug: Type.String({ pattern: '^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$' }),
  },
  strict,
));

const ResourceIds = Type.Union([Type.Array(Id, { maxItems: 1000 }), Type.Null()], { description: 'Limit to these resources; null = all.' });
export const AddMemberBody = named('InviteMemberRequest', Type.Object({ email: Email, role: RoleSchema, resources: Type.Optional(Type.Array(Id, { maxItems: 1000 })) }, strict));
export const PatchMemberBody = named('UpdateMemberRequest', Type.Object({ role: Type.Optional(RoleSchema), resources: Type.Optional(ResourceIds) }, { ...strict, minProperties: 1 }));

export const CreateResourceBody = named(
  'CreateResourceRequest',
  Type.Object({ type: Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$' }), name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f]+$' }) }, strict),
);

const ClientName = Type.String({ pattern: '^[A-Za-z0-9 ._-]{1,64}$' });
const Description = Type.Union([Type.String({ maxLength: 500 }), Type.Null()]);
const ClientRateLimit = Type.Optional(RateLimit);
export const CreateClientBody = named('CreateClientRequest', Type.Object({ name: ClientName, description: Type.Optional(Description), rateLimit: ClientRateLimit }, strict));
export const PatchClientBody = named(
  'UpdateClientRequest',
  Type.Object({ name: Type.Optional(ClientName), description: Type.Optional(Description), rateLimit: ClientRateLimit }, { ...strict, minProperties: 1 }),
);

export const Slug = Type.String({ pattern: '^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$' });
export const CreateOrganizationBody = named('CreateOrganizationRequest', Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), slug: Slug }, strict));
export const PatchOrganizationBody = named('UpdateOrganizationRequest', Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    tokenPolicy: Type.Optional(
      Type.Object(
        {
          maxLifetimeDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
          allowNoExpiry: Type.Optional(Type.Boolean()),
          requireIpAllowlist: Type.Optional(Type.Boolean()),
          revokeUnusedAfterDays: Type.Optional(
            Type.Union([Type.Integer({ minimum: 1, maximum: 3650 }), Type.Null()], { description: 'Revoke live tokens not used for this many days (counted from creation when never used); null = never.' }),
          ),
          retentionDays: Type.Optional(
            Type.Union([Type.Integer({ minimum: 30, maximum: 3650 }), Type.Null()], {
              description: 'Purge revoked and expired tokens, audit events, usage counts and sent webhooks older than this many days; null = keep forever.',
            }),
          ),
        },
        { ...strict, minProperties: 1 },
      ),
    ),
  },
  { ...strict, minProperties: 1 },
));

// Response shapes (SPEC §11). Serializing through them also guarantees that
// no field outside the schema, a digest say, can ever reach a response.
const ResourceRef = Type.Object({ id: Type.String(), type: Type.String(), name: Type.String() });
const tokenFields = {
  id: Type.String(),
  name: Type.String(),
  hint: Type.String(),
  kind: Type.Union([Type.Literal('personal'), Type.Literal('client')]),
  owner: Type.Object({ type: Type.Union([Type.Literal('user'), Type.Literal('client')]), id: Type.String() }),
  organizationId: Type.String(),
  scopes: Type.Array(Type.String()),
  permission: RoleSchema,
  resources: Type.Array(ResourceRef),
  resourcesLimited: Type.Boolean({
    description: 'True when the token was granted a list of resources. If all of them have since been deleted, `resources` is empty and the token reaches none (not all).',
  }),
  status: TokenStatusSchema,
  allowedIps: Type.Array(Type.String()),
  rateLimit: RateLimit,
  metadata: Type.Record(Type.String(), Type.Unknown()),
  remaining: Type.Union([Type.Integer(), Type.Null()]),
  refill: Refill,
  createdAt: Timestamp,
  expiresAt: Type.Union([Timestamp, Type.Null()], { description: 'When the token stops working: its expiry, or the end of its grace period once rotated out, whichever is first.' }),
  graceEndsAt: Type.Union([Timestamp, Type.Null()], {
    description: 'Set once the token has been rotated: when its secret stops working (null = never rotated). Until then its status stays active.',
  }),
  lastUsedAt: NullableTimestamp,
  lastUsedIp: Type.Union([Type.String(), Type.Null()]),
  rotatedFrom: Type.Union([Type.String(), Type.Null()]),
};
export const TokenResponse = named('Token', Type.Object(tokenFields));
export const CurrentTokenResponse = named('CurrentToken', Type.Object({
  ...tokenFields,
  effective: Type.Object(
    {
      scopes: Type.Array(Type.String()),
      permission: RoleSchema,
      resources: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'Ranked resource ids; null = every resource.' }),
    },
    { description: "What the token may do right now: its grants capped by its owner's current role and resources." },
  ),
}));
export const IssuedTokenResponse = named(
  'TokenCreated',
  Type.Object({ ...tokenFields, token: Type.String({ description: 'The plaintext secret. Shown exactly once.' }) }, { description: 'The new token, with its secret: store it now.' }),
);

export const ProblemResponse = named('Problem', Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
    instance: Type.Optional(Type.String()),
  },
  { description: 'RFC 9457 problem details.' },
));

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);
/** One page of a list, named `<name>`; pass `nextCursor` back as `cursor` for the next page (null = the last page). */
const pageOf = <T extends Parameters<typeof Type.Array>[0]>(name: string, item: T) =>
  named(name, Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String({ description: 'Send as `cursor` for the next page; null on the last page.' })) }));
export const TokenList = pageOf('TokenPage', TokenResponse);

export const NoContent = Type.Null({ description: 'No content.' });

const TokenPolicyResponse = Type.Object({
  maxLifetimeDays: Type.Integer(),
  allowNoExpiry: Type.Boolean(),
  requireIpAllowlist: Type.Boolean(),
  revokeUnusedAfterDays: Type.Union([Type.Integer(), Type.Null()], { description: 'null = unused tokens are never revoked automatically.' }),
  retentionDays: Type.Union([Type.Integer(), Type.Null()], { description: 'null = revoked/expired tokens and audit events are kept forever.' }),
});
const organizationFields = { id: Type.String(), name: Type.String(), slug: Type.String(), tokenPolicy: TokenPolicyResponse, createdAt: Timestamp };
export const OrganizationResponse = named('Organization', Type.Object(organizationFields));
const OrganizationWithRole = named('OrganizationMembership', Type.Object({ ...organizationFields, role: RoleSchema }, { description: 'An organization and your role in it.' }));

const memberFields = {
  userId: Nullable(Type.String({ description: 'null while the person has not accepted the invitation.' })),
  invitationId: Nullable(Type.String({ description: 'The pending invitation (`inv_…`), while status is invited.' })),
  email: Type.String(),
  role: RoleSchema,
  resources: Nullable(Type.Array(Type.String())),
  status: Type.Union([Type.Literal('active'), Type.Literal('invited')], {
    description: 'invited: a pending invitation, the same whether or not the email has an account; the person is not a member until they accept.',
  }),
  hasPassword: Nullable(Type.Boolean({ description: 'null while invited.' })),
  createdAt: Timestamp,
  expiresAt: Nullable(Timestamp),
};
export const MemberResponse = named('Member', Type.Object(memberFields));
export const MemberList = pageOf('MemberPage', MemberResponse);
export const AddedMemberResponse = named('MemberInvited', Type.Object({
  ...memberFields,
  inviteUrl: Type.String({ description: 'The one-time link the person accepts the invitation with.' }),
  inviteToken: Type.String({ description: 'The secret in inviteUrl.' }),
}));

export const ResourceResponse = named('Resource', Type.Object({ id: Type.String(), type: Type.String(), name: Type.String(), createdAt: Timestamp }));
export const ResourceList = pageOf('ResourcePage', ResourceResponse);

export const ClientResponse = named('Client', Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  organizationId: Type.String(),
  rateLimit: Type.Union([Type.Object({ limit: Type.Integer(), windowSeconds: Type.Integer() }), Type.Null()], { description: "Shared by all the client's service tokens." }),
  createdAt: Timestamp,
}));
export const ClientList = pageOf('ClientPage', ClientResponse);

export const AuditExportQuery = Type.Object(
  {
    from: Type.String({ format: 'date-time', description: 'Start of the range, inclusive.' }),
    to: Type.String({ format: 'date-time', description: 'End of the range, exclusive.' }),
    format: Type.Optional(Type.Union([Type.Literal('ndjson'), Type.Literal('csv')], { default: 'ndjson', description: 'ndjson (default) or csv.' })),
  },
  strict,
);
export const AuditExportBody = {
  description: 'The audit events of the range, oldest first: one JSON object a line (the AuditEvent shape), or CSV with a header row. Streamed.',
  content: { 'application/x-ndjson': { schema: Type.String() }, 'text/csv': { schema: Type.String() } },
};

export const AuditEventResponse = named('AuditEvent', Type.Object({
  id: Type.String(),
  at: Timestamp,
  action: Type.String(),
  actor: Type.Object({ type: Type.String(), id: Nullable(Type.String()) }),
  authMethod: Type.String(),
  organizationId: Nullable(Type.String()),
  target: Nullable(Type.Object({ type: Type.String(), id: Type.String() })),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  requestId: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown()),
}));
export const AuditEventList = pageOf('AuditEventPage', AuditEventResponse);

export const LoginResponse = named('LoginResult', Type.Object({
  user: Type.Object({ id: Type.String(), email: Type.String() }),
  organizations: Type.Array(OrganizationWithRole),
  csrfToken: Type.String({ description: 'Send as X-CSRF-Token on every state-changing request of this session.' }),
  expiresAt: Timestamp,
}));
export const SessionResponse = named('Session', Type.Object({
  user: Type.Object({ id: Type.String(), email: Nullable(Type.String()) }),
  organizationId: Type.String(),
  organizations: Type.Array(OrganizationWithRole),
  csrfToken: Type.String(),
  expiresAt: Timestamp,
}));
export const SetupResponse = named('SetupResult', Type.Object({ user: Type.Object({ id: Type.String(), email: Type.String() }), organization: OrganizationResponse }));

export const CatalogResponse = named('ScopeCatalog', Type.Object({
  scopes: Type.Array(Type.Object({ name: Type.String(), description: Type.String(), minRole: RoleSchema })),
  presets: Type.Array(Type.Object({ name: Type.String(), description: Nullable(Type.String()), scopes: Type.Array(Type.String()) })),
  defaultPreset: Type.String(),
}));

export const LeakReportResponse = named('LeakReportReceived', Type.Object({ received: Type.Integer({ description: 'How many strings were received; never how many were live tokens.' }) }));

const LeakFindingSchema = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 200, description: 'The string found, as found.' }),
    url: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://[^\\s]+$', description: 'Where it was found (a commit, an issue, a paste). Passed on to the owner; tokens in it are redacted.' })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:/ -]+$', description: 'What kind of place that is, in your words: commit, issue_comment, gist…' })),
  },
  strict,
);
export const PartnerLeakReportBody = named(
  'PartnerLeakReport',
  Type.Object({ findings: Type.Array(LeakFindingSchema, { minItems: 1, maxItems: 1000, description: 'Strings that look like Keyward tokens (pattern and checksum), with where each was found.' }) }, strict),
);
export const PartnerSignatureHeaders = Type.Object({
  'keyward-partner': Type.String({ minLength: 1, maxLength: 63, description: 'Your partner name, as the operator configured it.' }),
  'keyward-signature': Type.String({
    minLength: 1,
    maxLength: 400,
    description: '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under your partner secret>`; older than the tolerance (5 minutes by default) is refused.',
  }),
});
