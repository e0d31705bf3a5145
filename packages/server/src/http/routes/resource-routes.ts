import { createResource, deleteResource, listResources } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { CreateResourceBody, IdParams, NoContent, PageQuery, ResourceList, ResourceResponse } from '../schemas.ts';
import { resourceView } from '../views.ts';

const TAGS = ['Resources'];

export async function resourceRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;

  app.get('/api/v1/resources', {
    config: { scopes: ['tokens:read', 'tokens:write', 'members:manage'], minRole: 'viewer' },
    schema: { tags: TAGS, operationId: 'listResources', summary: 'List the resources you can access', ...secured(), querystring: PageQuery, response: { 200: ResourceList, ...problemResponses } },
    handler: async (request) => {
      const page = await listResources(deps, actorOf(request), request.query);
      return { items: page.items.map(resourceView), nextCursor: page.nextCursor };
    },
  });

  app.post('/api/v1/resources', {
    config: { scopes: ['members:manage'], minRole: 'admin' },
    schema: { tags: TAGS, operationId: 'createResource', summary: 'Add a resource', ...secured(), body: CreateResourceBody, response: { 201: ResourceResponse, ...problemResponses } },
    handler: async (request, reply) => {
      reply.code(201);
      return resourceView(await createResource(deps, actorOf(request), request.body));
    },
  });

  app.delete('/api/v1/resources/:id', {
    config: { scopes: ['members:manage'], minRole: 'admin' },
    schema: { tags: TAGS, operationId: 'deleteResource', summary: 'Delete a resource (removes it from every token and member at once)', ...secured(), params: IdParams, response: { 204: NoContent, ...problemResponses } },
    handler: async (request, reply) => {
      await deleteResource(deps, actorOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  });
}
