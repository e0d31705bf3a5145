#!/usr/bin/env -S node --max-semi-space-size=8
// The keyward command's entry. Plain JavaScript on purpose: it turns on Node's
// compile cache before the first TypeScript module loads, so the sources are
// type-stripped once (at `npm install`, see warm-compile-cache.js) and every
// start after that reads the stripped code and V8's bytecode from the cache.
// Stripping at each start costs ~0.4 s and ~25 MB of resident memory that is
// never given back (the stripper's WebAssembly memory only grows), which a
// server holding 100,000 cached tokens should not carry (docs/performance.md).
// The cache lives where Node puts it (NODE_COMPILE_CACHE, else the system's
// temporary directory); NODE_DISABLE_COMPILE_CACHE=1 turns it off, and a
// changed source file is simply stripped again.
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { runFromCommandLine } = await import('../src/main.ts');
runFromCommandLine(process.argv.slice(2));
