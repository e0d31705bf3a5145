import { presetScopes } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { CatalogResponse } from '../schemas.ts';
import { problemResponses, secured } from '../openapi.ts';

/** The deployment's scope catalog and presets, for clients building a create-token form. */
export async function catalogRoutes(app: App, ctx: AppContext): Promise<void> {
  const { catalog } = ctx.config;
  const body = {
    scopes: catalog.scopes.map((scope) => ({ name: scope.name, description: scope.description, minRole: scope.minRole })),
    presets: catalog.presets.map((preset) => ({ name: preset.name, description: preset.description ?? null, scopes: presetScopes(catalog, preset.name) ?? [] })),
    defaultPreset: catalog.defaultPreset,
  };
  app.get('/api/v1/scopes', {
    config: { scopes: [], minRole: 'viewer' },
    schema: { tags: ['Scopes'], operationId: 'getScopeCatalog', summary: 'The scope catalog: every scope with its minimum role, and the presets', ...secured(), response: { 200: CatalogResponse, ...problemResponses } },
    handler: async () => body,
  });
}
