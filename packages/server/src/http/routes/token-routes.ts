import {
  ForbiddenError,
  UnauthenticatedError,
  authenticatePassword,
  createToken,
  getCurrentToken,
  getToken,
  listTokens,
  revokeCurrentToken,
  revokeLeakedTokens,
  revokeToken,
  rotateToken,
  updateToken,
  type IssuedToken,
} from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf, requestFacts } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { CreateTokenBody, CurrentTokenResponse, IdParams, IssuedTokenResponse, LeakReportResponse, ListTokensQuery, NoContent, PatchTokenBody, RevokeLeakedBody, RotateTokenBody, TokenList, TokenResponse } from '../schemas.ts';
import { tokenView } from '../views.ts';
import { clientKeyOf, withAccountLimit } from '../../rate-limit/limiters.ts';

const TAGS = ['Tokens'];

export function issuedView(issued: IssuedToken, now: Date) {
  return { ...tokenView(issued.token, now), token: issued.plaintext };
}

export async function tokenRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;

  app.post('/api/v1/tokens', {
    config: { auth: 'optional', scopes: ['tokens:write', 'tokens:manage'], minRole: 'viewer' },
    schema: {
      tags: TAGS,
      operationId: 'createToken',
      summary: 'Create a personal token',
      description:
        'With a session or a bearer token holding tokens:write; or headless with `email` + `password` in the body (rate limited per IP). The plaintext is in the answer once and never again.',
      ...secured(),
      body: CreateTokenBody,
      response: { 201: IssuedTokenResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const { email, password, organization, ...settings } = request.body;
      let actor = request.actor;
      if (!actor) {
        if (email === undefined || password === undefined) {
          // No credentials at all is a 401 (RFC 9110 §15.5.2), not a 403.
          throw new UnauthenticatedError('Sign in, send a bearer token, or give email and password to create a token.');
        }
        // Counted before the password is checked, so guessing costs attempts whether or not it succeeds.
        await ctx.limiters.passwordFlow.consume(clientKeyOf(request.ip));
        // The same per-account limits as console sign-in: one count per address on the account, and a budget over all addresses.
        actor = await withAccountLimit(ctx.limiters, email, clientKeyOf(request.ip), () => authenticatePassword(deps, email, password, organization, requestFacts(request)));
      } else if (email !== undefined || password !== undefined || organization !== undefined) {
        throw new ForbiddenError('email, password and organization are only for the headless flow, not with a session or token.');
      }
      const issued = await createToken(deps, actor, settings);
      reply.code(201).header('cache-control', 'no-store');
      return issuedView(issued, deps.now());
    },
  });

  app.get('/api/v1/tokens', {
    config: { scopes: ['tokens:read', 'tokens:write', 'tokens:manage'], minRole: 'viewer' },
    schema: { tags: TAGS, operationId: 'listTokens', summary: "List the caller's tokens (or all, for admins)", ...secured(), querystring: ListTokensQuery, response: { 200: TokenList, ...problemResponses } },
    handler: async (request) => {
      const { client, ...query } = request.query;
      const page = await listTokens(deps, actorOf(request), { ...query, clientId: client });
      const now = deps.now();
      return { items: page.items.map((token) => tokenView(token, now)), nextCursor: page.nextCursor };
    },
  });

  app.get('/api/v1/tokens/current', {
    config: { scopes: [], minRole: 'viewer' },
    schema: { tags: TAGS, operationId: 'getCurrentToken', summary: 'Introspect the token making this call', ...secured(), response: { 200: CurrentTokenResponse, ...problemResponses } },
    handler: async (request) => {
      const actor = actorOf(request);
      const effective = { scopes: actor.scopes, permission: actor.permission, resources: actor.resourceIds === 'all' ? null : actor.resourceIds };
      return { ...tokenView(await getCurrentToken(deps, actor), deps.now()), effective };
    },
  });

  app.delete('/api/v1/tokens/current', {
    config: { scopes: [], minRole: 'viewer' },
    schema: { tags: TAGS, operationId: 'revokeCurrentToken', summary: 'Revoke the token making this call (needs no scope)', ...secured(), response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await revokeCurrentToken(deps, actorOf(request));
      return reply.code(204).send(null);
    },
  });

  app.post('/api/v1/tokens/revoke-leaked', {
    config: { scopes: ['tokens:write', 'tokens:manage'], minRole: 'viewer' },
    schema: {
      tags: TAGS,
      operationId: 'reportLeakedTokens',
      summary: 'Report leaked tokens',
      description: 'Each valid token in the list is revoked and audited in its own organization. The answer never says which were valid.',
      ...secured(),
      body: RevokeLeakedBody,
      response: { 202: LeakReportResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      await revokeLeakedTokens(deps, { actor: actorOf(request) }, request.body.tokens);
      return reply.code(202).send({ received: request.body.tokens.length });
    },
  });

  app.get('/api/v1/tokens/:id', {
    config: { scopes: ['tokens:read', 'tokens:write', 'tokens:manage'], minRole: 'viewer' },
    schema: { tags: TAGS, operationId: 'getToken', summary: 'Get one token', ...secured(), params: IdParams, response: { 200: TokenResponse, ...problemResponses } },
    handler: async (request) => tokenView(await getToken(deps, actorOf(request), request.params.id), deps.now()),
  });

  app.patch('/api/v1/tokens/:id', {
    config: { scopes: ['tokens:write', 'tokens:manage'], minRole: 'viewer' },
    schema: {
      tags: TAGS,
      operationId: 'updateToken',
      summary: 'Change a token',
      description: 'Same validation as creation; a change can never raise a token above the caller\'s own rights.',
      ...secured(),
      params: IdParams,
      body: PatchTokenBody,
      response: { 200: TokenResponse, ...problemResponses },
    },
    handler: async (request) => tokenView(await updateToken(deps, actorOf(request), request.params.id, request.body), deps.now()),
  });

  app.post('/api/v1/tokens/:id/rotate', {
    config: { scopes: ['tokens:write', 'tokens:manage'], minRole: 'viewer' },
    schema: {
      tags: TAGS,
      operationId: 'rotateToken',
      summary: 'Rotate a token',
      description:
        'Issues a new token (new id and secret) copying the settings. The old secret stays valid for gracePeriodSeconds (0-86400). Rotating an already rotated token, or using a rotated-out secret after its grace period, revokes the whole lineage.',
      ...secured(),
      params: IdParams,
      body: RotateTokenBody,
      response: { 201: IssuedTokenResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const issued = await rotateToken(deps, actorOf(request), request.params.id, request.body?.gracePeriodSeconds ?? 0);
      reply.code(201).header('cache-control', 'no-store');
      return issuedView(issued, deps.now());
    },
  });

  app.delete('/api/v1/tokens/:id', {
    config: { scopes: ['tokens:write', 'tokens:manage'], minRole: 'viewer' },
    schema: { tags: TAGS, operationId: 'revokeToken', summary: 'Revoke a token', ...secured(), params: IdParams, response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await revokeToken(deps, actorOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });
}
