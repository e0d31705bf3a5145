import { ValidationError, createOrganization, getCurrentOrganization, listAuditEvents, updateCurrentOrganization } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { AuditEventList, AuditQuery, CreateOrganizationBody, OrganizationResponse, PatchOrganizationBody } from '../schemas.ts';
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
}
