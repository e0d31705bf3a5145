import { ValidationError, createOrganization, getCurrentOrganization, listAuditEvents, updateCurrentOrganization } from '@keyward/core';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { App, AppContext } from '../app-types.ts';
import { auditEventsInRange } from '../../storage/audit-export-rows.ts';
import { AUDIT_EXPORT_CONTENT_TYPES, auditExportLines } from '../audit-export-format.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { AuditEventList, AuditExportBody, AuditExportQuery, AuditQuery, CreateOrganizationBody, OrganizationResponse, PatchOrganizationBody } from '../schemas.ts';
import { auditView, organizationView } from '../views.ts';

export async function organizationRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;

  // Creating organizations is for admins: an organization's owner can add people
  // to the instance, so this is not something every viewer should hold.
  app.post('/api/v1/organizations', {
    config: { scopes: ['members:manage'], minRole: 'admin' },
    schema: { tags: ['Organization'], operationId: 'createOrganization', summary: 'Create an organization; you become its owner', ...secured(), body: CreateOrganizationBody, response: { 201: OrganizationResponse, ...problemResponses } },
    handler: async (request, reply) => {
      reply.code(201);
      return organizationView(await createOrganization(deps, actorOf(request), request.body));
    },
  });

  app.get('/api/v1/organizations/current', {
    config: { scopes: [], minRole: 'viewer' },
    schema: { tags: ['Organization'], operationId: 'getCurrentOrganization', summary: 'The organization of this request, with its token policy', ...secured(), response: { 200: OrganizationResponse, ...problemResponses } },
    handler: async (request) => organizationView(await getCurrentOrganization(deps, actorOf(request))),
  });

  app.patch('/api/v1/organizations/current', {
    config: { scopes: ['members:manage'], minRole: 'admin' },
    schema: { tags: ['Organization'], operationId: 'updateCurrentOrganization', summary: 'Change the organization name or token policy', ...secured(), body: PatchOrganizationBody, response: { 200: OrganizationResponse, ...problemResponses } },
    handler: async (request) => organizationView(await updateCurrentOrganization(deps, actorOf(request), request.body)),
  });

  app.get('/api/v1/audit', {
    config: { scopes: ['audit:read'], minRole: 'admin' },
    schema: { tags: ['Audit'], operationId: 'listAuditEvents', summary: 'The audit log, newest first', ...secured(), querystring: AuditQuery, response: { 200: AuditEventList, ...problemResponses } },
    handler: async (request) => {
      const { actor, target, since, until, ...rest } = request.query;
      // The format check accepts a leap second (…:60Z), which no Date can hold.
      for (const [field, value] of Object.entries({ since, until })) {
        if (value !== undefined && Number.isNaN(Date.parse(value))) throw ValidationError.field(field, 'is not a valid date-time');
      }
      const page = await listAuditEvents(deps, actorOf(request), {
        ...rest,
        actorId: actor,
        targetId: target,
        since: since ? new Date(since) : undefined,
        until: until ? new Date(until) : undefined,
      });
      return { items: page.items.map(auditView), nextCursor: page.nextCursor };
    },
  });

  app.get('/api/v1/audit/export', {
    config: { scopes: ['audit:read'], minRole: 'admin' },
    schema: {
      tags: ['Audit'],
      operationId: 'exportAuditEvents',
      summary: 'Stream the audit events of a time range, oldest first, as NDJSON or CSV (for SIEMs)',
      ...secured(),
      querystring: AuditExportQuery,
      response: { 200: AuditExportBody, ...problemResponses },
    },
    handler: async (request, reply) => {
      const { from, to, format = 'ndjson' } = request.query;
      // The format check accepts a leap second (…:60Z), which no Date can hold.
      for (const [field, value] of Object.entries({ from, to })) {
        if (Number.isNaN(Date.parse(value))) throw ValidationError.field(field, 'is not a valid date-time');
      }
      const range = { organizationId: actorOf(request).organizationId, from: new Date(from), to: new Date(to) };
      if (range.from.getTime() >= range.to.getTime()) throw ValidationError.field('to', 'must be after from');
      const stamp = (date: Date) => date.toISOString().replace(/[-:]|\.\d{3}/g, '');
      const events = auditEventsInRange(ctx.database.db, ctx.database.capabilities.readTimestamp, range);
      // The schema types the 200 body as the string it documents; what is sent is a stream of it.
      return (reply as unknown as FastifyReply)
        .type(AUDIT_EXPORT_CONTENT_TYPES[format])
        .header('content-disposition', `attachment; filename="keyward-audit-${stamp(range.from)}-${stamp(range.to)}.${format}"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(auditExportLines(events, format), { objectMode: false }));
    },
  });
}
