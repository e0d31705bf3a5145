// The management client's types are generated from the server's OpenAPI
// document and checked in; this fails while they are stale.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CLIENT_TYPES_PATH, buildOpenApiDocument, clientTypesSource } from '../../../../scripts/openapi-document.ts';

describe('the generated management-client types', () => {
  it('match what the current server document generates (else: npm run generate:client)', async () => {
    const expected = await clientTypesSource(await buildOpenApiDocument());
    const checkedIn = await readFile(CLIENT_TYPES_PATH, 'utf8');
    // Compared as a boolean first, so a stale file fails with the fix rather than a 2,000-line diff.
    expect(checkedIn === expected, 'packages/sdk/src/client/api-types.ts is stale: run `npm run generate:client` and commit the result').toBe(true);
  }, 120_000);
});
