import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { generateApiTypes } from '../scripts/api-types.ts';

describe("the console's API types", () => {
  it('match the OpenAPI document the server produces now (npm run generate-api -w packages/console)', async () => {
    const committed = await readFile(new URL('../src/api/schema.ts', import.meta.url), 'utf8');
    expect(committed === (await generateApiTypes()), 'packages/console/src/api/schema.ts is stale: run npm run generate-api -w packages/console').toBe(true);
  });
});
