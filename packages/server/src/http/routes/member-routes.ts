import { addMember, getMember, listMembers, removeMember, updateMember } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { AddMemberBody, AddedMemberResponse, MemberList, MemberResponse, NoContent, PageQuery, PatchMemberBody, UserIdParams } from '../schemas.ts';
import { invitationView, memberListItemView, memberView } from '../views.ts';

const TAGS = ['Members'];
const MANAGE = { scopes: ['members:manage'], minRole: 'admin' as const };

export async function memberRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;

  app.get('/api/v1/members', {
    config: MANAGE,
    schema: {
      tags: TAGS,
      operationId: 'listMembers',
      summary: 'List members and pending invitations',
      description: 'Newest first. A pending invitation is listed with status "invited" and userId null until the person accepts.',
      ...secured(),
      querystring: PageQuery,
      response: { 200: MemberList, ...problemResponses },
    },
    handler: async (request) => {
      const page = await listMembers(deps, actorOf(request), request.query);
      return { items: page.items.map(memberListItemView), nextCursor: page.nextCursor };
    },
  });

  app.post('/api/v1/members', {
    config: MANAGE,
    schema: {
      tags: TAGS,
      operationId: 'inviteMember',
      summary: 'Invite a member',
      description:
        'Answers a one-time inviteUrl (valid 7 days) the same way whether or not the email has an account: the person becomes a member only when they accept it, ' +
        'a new person by choosing a password, someone with an account while signed in. Inviting the same email again replaces the earlier link. There is no password field: nobody sets a password for someone else.',
      ...secured(),
      body: AddMemberBody,
      response: { 201: AddedMemberResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const invited = await addMember(deps, actorOf(request), request.body);
      reply.code(201).header('cache-control', 'no-store');
      return { ...invitationView(invited.invitation), inviteUrl: `${ctx.config.publicUrl}/invite#${invited.inviteToken}`, inviteToken: invited.inviteToken };
    },
  });

  app.get('/api/v1/members/:userId', {
    config: MANAGE,
    schema: { tags: TAGS, operationId: 'getMember', summary: 'Get a member (by user id) or a pending invitation (by inv_ id)', ...secured(), params: UserIdParams, response: { 200: MemberResponse, ...problemResponses } },
    handler: async (request) => memberListItemView(await getMember(deps, actorOf(request), request.params.userId)),
  });

  app.patch('/api/v1/members/:userId', {
    config: MANAGE,
    schema: {
      tags: TAGS,
      operationId: 'updateMember',
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
    schema: { tags: TAGS, operationId: 'removeMember', summary: 'Remove a member and revoke their tokens here, or withdraw a pending invitation (inv_ id)', ...secured(), params: UserIdParams, response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await removeMember(deps, actorOf(request), request.params.userId);
      return reply.code(204).send(null);
    },
  });
}
