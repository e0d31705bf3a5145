import { ConflictError, NotFoundError, acceptInvite, bootstrapOwner, csrfTokenFor, digestsEqual, login, logout } from '@keyward/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppContext } from '../app-types.ts';
import { SESSION_COOKIE, actorOf, requestFacts } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { AcceptInviteBody, LoginBody, LoginResponse, NoContent, SessionResponse, SetupBody, SetupResponse } from '../schemas.ts';
import { organizationView } from '../views.ts';
import { clientKeyOf, withAccountLimit } from '../../rate-limit/limiters.ts';

const TAGS = ['Sessions'];

function isSecure(ctx: AppContext, request: FastifyRequest): boolean {
  return request.protocol === 'https' || ctx.config.publicUrl.startsWith('https:');
}

function setSessionCookie(ctx: AppContext, request: FastifyRequest, reply: FastifyReply, value: string, expires: Date): void {
  reply.setCookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', secure: isSecure(ctx, request), path: '/', expires });
}

export async function authRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps, limiters } = ctx;

  app.post('/api/v1/auth/login', {
    config: { auth: 'none' },
    schema: {
      tags: TAGS,
      summary: 'Sign in to the console',
      description: 'Sets an HTTP-only SameSite session cookie and answers the CSRF token to send as X-CSRF-Token. Rate limited per IP and per account.',
      body: LoginBody,
      response: { 200: LoginResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const clientKey = clientKeyOf(request.ip);
      await limiters.loginPerIp.consume(clientKey);
      const started = await withAccountLimit(limiters, request.body.email, clientKey, () => login(deps, request.body.email, request.body.password, requestFacts(request)));
      setSessionCookie(ctx, request, reply, started.sessionSecret, started.session.expiresAt);
      reply.header('cache-control', 'no-store');
      return {
        user: { id: started.user.id, email: started.user.email },
        organizations: started.memberships.map((m) => ({ ...organizationView(m.organization), role: m.role })),
        csrfToken: started.csrfToken,
        expiresAt: started.session.expiresAt.toISOString(),
      };
    },
  });

  app.get('/api/v1/auth/session', {
    config: { scopes: [] },
    schema: { tags: TAGS, summary: 'The signed-in person, their organizations and the CSRF token', ...secured(), response: { 200: SessionResponse, ...problemResponses } },
    handler: async (request, reply) => {
      const actor = actorOf(request);
      const session = request.session;
      if (!session || !actor.user) throw new NotFoundError('session: this request was not made with a console session');
      const user = await deps.store.findUserById(actor.user.id);
      const memberships = await deps.store.listMembershipsOfUser(actor.user.id);
      reply.header('cache-control', 'no-store');
      return {
        user: { id: actor.user.id, email: user?.email ?? null },
        organizationId: actor.organizationId,
        organizations: memberships.map((m) => ({ ...organizationView(m.organization), role: m.role })),
        csrfToken: csrfTokenFor(request.cookies[SESSION_COOKIE] ?? ''),
        expiresAt: session.expiresAt.toISOString(),
      };
    },
  });

  app.post('/api/v1/auth/logout', {
    config: { scopes: [] },
    schema: { tags: TAGS, summary: 'Sign out (ends the session)', ...secured(), response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      const actor = actorOf(request);
      if (request.session) await logout(deps, actor, request.session);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  });

  app.post('/api/v1/auth/accept-invite', {
    config: { auth: 'none' },
    schema: { tags: TAGS, summary: 'Set your password with the one-time token from an invite link', body: AcceptInviteBody, response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await limiters.loginPerIp.consume(clientKeyOf(request.ip));
      await acceptInvite(deps, request.body.inviteToken, request.body.password, requestFacts(request));
      return reply.code(204).send(null);
    },
  });

  app.post('/api/v1/setup', {
    config: { auth: 'none' },
    schema: {
      tags: TAGS,
      summary: 'First run: create the first owner and organization',
      description: 'Needs the one-time setup token printed by the server on an empty database.',
      body: SetupBody,
      response: { 201: SetupResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      await limiters.loginPerIp.consume(clientKeyOf(request.ip));
      const expected = ctx.setup.token;
      if (!expected || !digestsEqual(expected, request.body.setupToken)) throw new NotFoundError('setup token (Keyward may already be set up)');
      const { setupToken: _unused, ...input } = request.body;
      try {
        const created = await bootstrapOwner(deps, input, requestFacts(request));
        ctx.setup.token = null;
        reply.code(201);
        return { user: { id: created.user.id, email: created.user.email }, organization: organizationView(created.organization) };
      } catch (error) {
        if (error instanceof ConflictError) ctx.setup.token = null;
        throw error;
      }
    },
  });
}
