import { readFileSync } from 'node:fs';

// Read from package.json rather than from @keyward/server, so the remote commands never load the server.
export const CLI_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
