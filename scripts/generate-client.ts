// npm run generate:client: regenerates the SDK's management-client types
// (packages/sdk/src/client/api-types.ts) from the document a Keyward server
// serves at /openapi.json. Run it after changing a route's schema; the SDK's
// tests fail while the checked-in file is stale.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLIENT_TYPES_PATH, buildOpenApiDocument, clientTypesSource } from './openapi-document.ts';

await mkdir(path.dirname(CLIENT_TYPES_PATH), { recursive: true });
await writeFile(CLIENT_TYPES_PATH, await clientTypesSource(await buildOpenApiDocument()));
console.log(`wrote ${path.relative(process.cwd(), CLIENT_TYPES_PATH)}`);
