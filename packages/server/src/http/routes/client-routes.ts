import { createClient, createToken, deleteClient, getClient, listClients, listTokens, updateClient } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { ClientList, ClientResponse, CreateClientBody, CreateClientTokenBody, IdParams, IssuedTokenResponse, NoContent, PageQuery, PatchClientBody, TokenList } from '../schemas.ts';
import { clientView, tokenView } from '../views.ts';
import { issuedView } from './token-routes.ts';

const TAGS = ['Clients'];
const MANAGE = { scopes: ['clients:manage'], minRole: 'admin' as const };

export async function clientRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;

  app.post('/api/v1/clients', {
    config: MANAGE,
    schema: { tags: TAGS, operationId: 'createClient', summary: 'Create an API client', ...secured(), body: CreateClientBody, response: { 201: ClientResponse, ...problemResponses } },
    handler: async (request, reply) => {
      reply.code(201);
      return clientView(await createClient(deps, actorOf(request), request.body));
    },
  });

  app.get('/api/v1/clients', {
    config: MANAGE,
    schema: { tags: TAGS, operationId: 'listClients', summary: 'List API clients', ...secured(), querystring: PageQuery, response: { 200: ClientList, ...problemResponses } },
    handler: async (request) => {
      const page = await listClients(deps, actorOf(request), request.query);
      return { items: page.items.map(clientView), nextCursor: page.nextCursor };
    },
  });

  app.get('/api/v1/clients/:id', {
    config: MANAGE,
    schema: { tags: TAGS, operationId: 'getClient', summary: 'Get an API client', ...secured(), params: IdParams, response: { 200: ClientResponse, ...problemResponses } },
    handler: async (request) => clientView(await getClient(deps, actorOf(request), request.params.id)),
  });

  app.patch('/api/v1/clients/:id', {
    config: MANAGE,
    schema: { tags: TAGS, operationId: 'updateClient', summary: 'Change an API client', ...secured(), params: IdParams, body: PatchClientBody, response: { 200: ClientResponse, ...problemResponses } },
    handler: async (request) => clientView(await updateClient(deps, actorOf(request), request.params.id, request.body)),
  });

  app.delete('/api/v1/clients/:id', {
    config: MANAGE,
    schema: { tags: TAGS, operationId: 'deleteClient', summary: 'Delete an API client and revoke its tokens', ...secured(), params: IdParams, response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await deleteClient(deps, actorOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });

  app.post('/api/v1/clients/:id/tokens', {
    config: MANAGE,
    schema: {
      tags: TAGS,
      operationId: 'createClientToken',
      summary: 'Create a service token for an API client',
      ...secured(),
      params: IdParams,
      body: CreateClientTokenBody,
      response: { 201: IssuedTokenResponse, ...problemResponses },
    },
    handler: async (request, reply) => {
      const issued = await createToken(deps, actorOf(request), request.body, { kind: 'client', clientId: request.params.id });
      reply.code(201).header('cache-control', 'no-store');
      return issuedView(issued, deps.now());
    },
  });

  app.get('/api/v1/clients/:id/tokens', {
    config: MANAGE,
    schema: { tags: TAGS, operationId: 'listClientTokens', summary: "List an API client's tokens", ...secured(), params: IdParams, querystring: PageQuery, response: { 200: TokenList, ...problemResponses } },
    handler: async (request) => {
      const actor = actorOf(request);
      await getClient(deps, actor, request.params.id);
      const page = await listTokens(deps, actor, { ...request.query, clientId: request.params.id });
      const now = deps.now();
      return { items: page.items.map((token) => tokenView(token, now)), nextCursor: page.nextCursor };
    },
  });
}
