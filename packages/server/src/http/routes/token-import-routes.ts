// POST /api/v1/tokens/import: an organization admin brings existing API keys
// (issue 13). The answer judges each record and never repeats a key or a hash.
import { importTokens, type ImportRecord } from '@keyward/core';
import type { App, AppContext } from '../app-types.ts';
import { actorOf } from '../authenticate.ts';
import { problemResponses, secured } from '../openapi.ts';
import { ImportTokensBody, ImportTokensResponse } from '../schemas.ts';

// 1,000 records with their metadata need more than the default body limit.
const IMPORT_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

export async function tokenImportRoutes(app: App, ctx: AppContext): Promise<void> {
  const { deps } = ctx;

  app.post('/api/v1/tokens/import', {
    config: { scopes: ['tokens:manage'], minRole: 'admin' },
    bodyLimit: Math.max(ctx.config.bodyLimitBytes, IMPORT_BODY_LIMIT_BYTES),
    schema: {
      tags: ['Tokens'],
      operationId: 'importTokens',
      summary: 'Import existing API keys',
      description:
        'Up to 1,000 keys per request, each as plaintext or as the SHA-256 hash another key service stored, with owner, name, scopes, resources, expiry and metadata. Every record is judged alone: created, skipped (its externalId was imported before, so a re-run creates no duplicates) or failed with field errors; the created ones are written in one transaction. The importer and the owner must both be able to grant what a key carries; service tokens also need clients:manage. With dryRun nothing is written.',
      ...secured(),
      body: ImportTokensBody,
      response: { 200: ImportTokensResponse, ...problemResponses },
    },
    handler: async (request) => {
      const records: ImportRecord[] = request.body.records.map(({ expiresAt, ...record }) => ({
        ...record,
        expiresAt: expiresAt === undefined || expiresAt === null ? null : new Date(expiresAt),
      }));
      const summary = await importTokens(deps, actorOf(request), records, { dryRun: request.body.dryRun === true });
      const count = (status: string) => summary.results.filter((result) => result.status === status).length;
      return { dryRun: summary.dryRun, created: count('created'), skipped: count('skipped'), failed: count('failed'), results: summary.results };
    },
  });
}
