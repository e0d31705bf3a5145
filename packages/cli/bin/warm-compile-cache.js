// Run by the root `prepare` script (npm install): loads every module the
// keyward command and its server load, with Node's compile cache on, so the
// first `npm start` already finds them type-stripped and compiled (see
// keyward.js). Importing runs no command: the modules only define things.
import { constants, enableCompileCache, flushCompileCache } from 'node:module';

const { status, message } = enableCompileCache();
// A cache that cannot be written only makes starts slower: say so, and go on.
if (status === constants.compileCacheStatus.FAILED) console.warn(`keyward: no compile cache (${message}); starts will type-strip the sources`);
await import('../src/main.ts');
await import('../src/local-commands.ts');
await import('@keyward/server');
flushCompileCache();
