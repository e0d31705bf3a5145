// Starts the scan API: `npm start` in this directory (see README.md).
import process from 'node:process';
import { createVerifier } from '@keyward/sdk';
import { buildScanApi } from './app.ts';

const token = process.env.KEYWARD_VERIFY_TOKEN;
if (!token) {
  console.error('Set KEYWARD_VERIFY_TOKEN to a Keyward service token with the keyward:verify scope.');
  process.exit(2);
}
const verifier = createVerifier({ baseUrl: process.env.KEYWARD_URL ?? 'http://127.0.0.1:8080', token });
const app = await buildScanApi({ verifier, logger: true });
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (async () => {
      await app.close();
      await verifier.close();
    })();
  });
}
