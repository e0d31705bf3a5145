import { addMember, getMember, listMembers, removeMember, updateMember } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { AddMemberBody, AddedMemberResponse, MemberList, MemberResponse, NoContent, PageQuery, PatchMemberBody, UserIdParams } from '../schemas.ts';
import { memberView } from '../views.ts';

const TAGS = ['Members'];
const MANAGE = { scopes: ['members:manage'], minRole: 'admin' as const };

export async function memberRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;

  app.get('/api/v1/members', {
    config: MANAGE,
    schema: { tags: TAGS, summary: 'List members', ...secured(), querystring: PageQuery, response: { 200: MemberList, ...problemResponses } },
    handler: async (request) => {
      const page = await listMembers(deps, actorOf(request), request.query);
      return { items: page.items.map(memberView), nextCursor: page.nextCursor };
    },
  });

  app.post('/api/v1/members', {
    config: MANAGE,
    schema: {
      tags: TAGS,
      summary: 'Add a member',
      description: 'Creates the person when new. Without a password the answer carries a one-time inviteUrl to set one.',
      ...secured(),
      body: AddMemberBody,
      response: { 201: AddedMemberResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const added = await addMember(deps, actorOf(request), request.body);
      reply.code(201).header('cache-control', 'no-store');
      const inviteUrl = added.inviteToken ? `${ctx.config.publicUrl}/invite#${added.inviteToken}` : null;
      return { ...memberView(added.member), inviteUrl, inviteToken: added.inviteToken };
    },
  });

  app.get('/api/v1/members/:userId', {
    config: MANAGE,
    schema: { tags: TAGS, summary: 'Get a member', ...secured(), params: UserIdParams, response: { 200: MemberResponse, ...problemResponses } },
    handler: async (request) => memberView(await getMember(deps, actorOf(request), request.params.userId)),
  });

  app.patch('/api/v1/members/:userId', {
    config: MANAGE,
    schema: {
      tags: TAGS,
      summary: "Change a member's role or resources",
      description: "Takes effect on the member's existing tokens at once.",
      ...secured(),
      params: UserIdParams,
      body: PatchMemberBody,
      response: { 200: MemberResponse, ...problemResponses },
    },
    handler: async (request) => memberView(await updateMember(deps, actorOf(request), request.params.userId, request.body)),
  });

  app.delete('/api/v1/members/:userId', {
    config: MANAGE,
    schema: { tags: TAGS, summary: 'Remove a member and revoke their tokens here', ...secured(), params: UserIdParams, response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await removeMember(deps, actorOf(request), request.params.userId);
      return reply.code(204).send(null);
    },
  });
}
