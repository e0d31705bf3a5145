import { ConflictError, ForbiddenError, NotFoundError, UnauthenticatedError, ValidationError, acceptInvite, bootstrapOwner, csrfTokenFor, digestsEqual, findLiveSession, isCsrfTokenValid, login, logout } from '@keyward/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppContext } from '../app-types.ts';
import { CSRF_HEADER, SESSION_COOKIE, actorOf, requestFacts } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { AcceptInviteBody, LoginBody, LoginResponse, NoContent, SessionResponse, SetupBody, SetupResponse } from '../schemas.ts';
import { organizationView } from '../views.ts';
import { clientKeyOf, withAccountLimit } from '../../rate-limit/limiters.ts';

const TAGS = ['Auth'];

function isSecure(ctx: AppContext, request: FastifyRequest): boolean {
  return request.protocol === 'https' || ctx.config.publicUrl.startsWith('https:');
}

function setSessionCookie(ctx: AppContext, request: FastifyRequest, reply: FastifyReply, value: string, expires: Date): void {
  reply.setCookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', secure: isSecure(ctx, request), path: '/', expires });
}

/**
 * The person signed in to the console, if any, for routes open to everyone.
 * A session counts only with its CSRF token, so another site cannot accept
 * an invitation in the name of whoever is signed in.
 */
async function signedInUserOf(ctx: AppContext, request: FastifyRequest): Promise<string | null> {
  const cookie = request.cookies?.[SESSION_COOKIE];
  if (!cookie) return null;
  const session = await findLiveSession(ctx.deps, cookie);
  if (!session) throw new UnauthenticatedError('The session has ended; sign in again.');
  const header = request.headers[CSRF_HEADER];
  if (!isCsrfTokenValid(session, typeof header === 'string' ? header : undefined)) throw new ForbiddenError('This request needs the X-CSRF-Token header of your session.');
  return session.userId;
}

export async function authRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps, limiters } = ctx;

  app.post('/api/v1/auth/login', {
    config: { auth: 'none' },
    schema: {
      tags: TAGS,
      operationId: 'login',
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
    schema: { tags: TAGS, operationId: 'getSession', summary: 'The signed-in person, their organizations and the CSRF token', ...secured(), response: { 200: SessionResponse, ...problemResponses } },
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
    schema: { tags: TAGS, operationId: 'logout', summary: 'Sign out (ends the session)', ...secured(), response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      const actor = actorOf(request);
      if (request.session) await logout(deps, actor, request.session);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  });

  app.post('/api/v1/auth/accept-invite', {
    config: { auth: 'none' },
    schema: {
      tags: TAGS,
      operationId: 'acceptInvite',
      summary: 'Accept an invitation with the one-time token from its link',
      description:
        'A new person sends a password and gets an account. Someone who already has an account accepts signed in (session cookie and X-CSRF-Token), without a password; ' +
        'their password is never changed. Either way they become a member of the inviting organization.',
      body: AcceptInviteBody,
      response: { 204: NoContent, ...problemResponses },
    },
    handler: async (request, reply) => {
      await limiters.loginPerIp.consume(clientKeyOf(request.ip));
      const { inviteToken, password } = request.body;
      const signedInUserId = await signedInUserOf(ctx, request);
      if (signedInUserId !== null && password !== undefined) throw ValidationError.field('password', 'is not needed while signed in: the invitation is accepted for your account');
      if (signedInUserId === null && password === undefined) throw ValidationError.field('password', 'is required: choose one, or sign in first if you already have an account');
      await acceptInvite(deps, inviteToken, signedInUserId !== null ? { signedInUserId } : { password: password as string }, requestFacts(request));
      return reply.code(204).send(null);
    },
  });

  app.post('/api/v1/setup', {
    config: { auth: 'none' },
    schema: {
      tags: TAGS,
      operationId: 'completeSetup',
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
