// Authentication for every management route: a bearer token or a console
// session (with CSRF protection), then the route's declared scopes and minimum role.
import {
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
  actorForMember,
  findLiveSession,
  isCsrfTokenValid,
  requirePermission,
  requireScope,
  resolveMembership,
  type Actor,
  type RequestFacts,
  type Role,
  type Session,
} from '@keyward/core';
import type { FastifyRequest } from 'fastify';
import type { AppContext, RouteAuth } from './app-types.ts';
import { authenticateBearer } from '../verification/bearer-actor.ts';

export const SESSION_COOKIE = 'keyward_session';
export const CSRF_HEADER = 'x-csrf-token';
export const ORGANIZATION_HEADER = 'x-keyward-organization';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function requestFacts(request: FastifyRequest): RequestFacts {
  const userAgent = request.headers['user-agent'];
  return { ip: request.ip ?? null, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : null, requestId: request.id };
}

/** The token of an `Authorization: Bearer <token>` header, or null when there is none or it is not of that form. */
export function bearerOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer ([!-~]{1,512})$/i.exec(header.trim());
  return match?.[1] ?? null;
}

function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  const token = bearerOf(header);
  if (token === null) throw new UnauthenticatedError('The Authorization header must be "Bearer <token>".', 'invalid');
  return token;
}

async function sessionActor(ctx: AppContext, request: FastifyRequest, secret: string): Promise<{ actor: Actor; session: Session }> {
  const session = await findLiveSession(ctx.deps, secret);
  if (!session) throw new UnauthenticatedError('The session has ended; sign in again.');
  // The session cookie rides along on cross-site requests; the CSRF header cannot.
  if (!SAFE_METHODS.has(request.method)) {
    const header = request.headers[CSRF_HEADER];
    if (!isCsrfTokenValid(session, typeof header === 'string' ? header : undefined)) {
      throw new ForbiddenError('This request needs the X-CSRF-Token header of your session.');
    }
  }
  const wanted = request.headers[ORGANIZATION_HEADER];
  const membership = await resolveMembership(ctx.deps, session.userId, typeof wanted === 'string' ? wanted : null);
  if (!membership) {
    if (typeof wanted === 'string') throw new NotFoundError('organization');
    throw new ForbiddenError('You are not a member of any organization.');
  }
  return { actor: actorForMember(ctx.deps, membership, 'session', requestFacts(request)), session };
}

/** Resolves the caller, or null when the request carries no credentials at all. */
export async function authenticateRequest(ctx: AppContext, request: FastifyRequest): Promise<{ actor: Actor; session: Session | null } | null> {
  const token = bearerToken(request);
  if (token !== null) return { actor: await authenticateBearer(ctx.verifier, ctx.deps, token, requestFacts(request)), session: null };
  const cookie = request.cookies?.[SESSION_COOKIE];
  if (cookie) return sessionActor(ctx, request, cookie);
  return null;
}

/** What a route asks of its caller, when it is fixed once for the route (the verification entry points). */
export interface CallerRequirement {
  auth: RouteAuth;
  scopes?: string[];
  minRole?: Role;
}

/**
 * The preValidation hook: runs before body validation, so an anonymous caller learns nothing about schemas.
 * Without `fixed`, it reads each request's route config; with it, a route-level hook skips that lookup.
 */
export function createAuthHook(ctx: AppContext, fixed?: CallerRequirement) {
  return async function authHook(request: FastifyRequest): Promise<void> {
    request.actor = null;
    request.session = null;
    const config = fixed ?? request.routeOptions.config;
    // Everything under /api/v1 is protected unless a route says otherwise.
    const auth = config?.auth ?? (request.routeOptions.url?.startsWith('/api/v1/') ? 'required' : 'none');
    if (auth === 'none') return;
    const result = await authenticateRequest(ctx, request);
    if (!result) {
      if (auth === 'optional') return;
      throw new UnauthenticatedError('Authentication is required: send "Authorization: Bearer <token>" or sign in.');
    }
    request.actor = result.actor;
    request.session = result.session;
    if (config?.scopes && config.scopes.length > 0) requireScope(result.actor, ...config.scopes);
    if (config?.minRole) requirePermission(result.actor, config.minRole);
  };
}

export function actorOf(request: FastifyRequest): Actor {
  if (!request.actor) throw new UnauthenticatedError();
  return request.actor;
}
