import Type from 'typebox';
import { NotFoundError, VERIFY_CODES, canViewToken, hasScope, requireScope, type Actor, type ServiceDeps } from '@keyward/core';
import { UsageStore } from '../../storage/usage-rows.ts';
import { resolveUsageRange } from '../../usage/usage-range.ts';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { Id, named } from '../schemas.ts';

const strict = { additionalProperties: false } as const;
const Timestamp = Type.String({ format: 'date-time' });
const granularity = (options: { description?: string } = {}) => Type.Union([Type.Literal('minute'), Type.Literal('hour'), Type.Literal('day')], options);

export const UsageQuery = Type.Object(
  {
    granularity: Type.Optional(granularity({ description: 'Bucket size (UTC); default hour.' })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Default: a day before `to`. Rounded down to the start of its bucket (UTC).' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive; default now. At most 1,440 minute, 2,160 hour or 400 day buckets after `from`.' })),
    tokenId: Type.Optional(Id),
    clientId: Type.Optional(Id),
  },
  strict,
);

const CodeCounts = Type.Object(Object.fromEntries(VERIFY_CODES.map((code) => [code, Type.Optional(Type.Integer({ minimum: 1 }))])), {
  ...strict,
  description: 'Verifications per outcome code; only the codes that occurred.',
});

export const UsageResponse = named('UsageReport', Type.Object({
  granularity: granularity(),
  from: Timestamp,
  to: Timestamp,
  buckets: Type.Array(Type.Object({ start: Timestamp, total: Type.Integer({ minimum: 1 }), counts: CodeCounts })),
}));

const DESCRIPTION = [
  'Verifications per time bucket (UTC) and outcome code, for the organization, one API client (`clientId`) or one token (`tokenId`). Only buckets with counts are listed, oldest first.',
  'The organization or a client needs audit:read (or clients:manage for a client); a token needs the right to view it. Verifications are counted in memory and written every few seconds, so the latest appear after the next flush.',
].join('\n\n');

/** Whose usage the caller may read; a token the caller may not see answers like a missing one. */
async function authorizeUsage(deps: ServiceDeps, actor: Actor, filter: { tokenId?: string | undefined; clientId?: string | undefined }): Promise<void> {
  if (filter.tokenId !== undefined) {
    const token = await deps.store.findToken(actor.organizationId, filter.tokenId);
    if (!token || !(hasScope(actor, 'audit:read') || canViewToken(actor, token))) throw new NotFoundError('token');
  }
  if (filter.clientId !== undefined) {
    requireScope(actor, 'audit:read', 'clients:manage');
    // A deleted client's usage stays readable: it is history.
    if (!(await deps.store.findClient(actor.organizationId, filter.clientId))) throw new NotFoundError('client');
  }
  if (filter.tokenId === undefined && filter.clientId === undefined) requireScope(actor, 'audit:read');
}

export async function usageRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;
  const usage = new UsageStore(ctx.database.db, ctx.database.capabilities);

  app.get('/api/v1/usage', {
    // Any of these admits the request; the handler then checks what it asks for.
    config: { scopes: ['audit:read', 'clients:manage', 'tokens:read', 'tokens:write', 'tokens:manage'] },
    schema: { tags: ['Usage'], operationId: 'getUsage', summary: 'Verification counts per time bucket and outcome code', description: DESCRIPTION, ...secured(), querystring: UsageQuery, response: { 200: UsageResponse, ...problemResponses } },
    handler: async (request) => {
      const actor = actorOf(request);
      const { tokenId, clientId } = request.query;
      const granularity = request.query.granularity ?? 'hour';
      await authorizeUsage(deps, actor, { tokenId, clientId });
      const range = resolveUsageRange({ granularity, from: request.query.from, to: request.query.to }, deps.now());
      const buckets = await usage.queryUsage({ organizationId: actor.organizationId, tokenId, clientId, granularity, ...range });
      return {
        granularity,
        from: range.from.toISOString(),
        to: range.to.toISOString(),
        buckets: buckets.map((bucket) => ({ start: bucket.start.toISOString(), total: bucket.total, counts: bucket.counts })),
      };
    },
  });
}
