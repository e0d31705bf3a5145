// The V8 flags the Keyward server process runs with. They cannot be set from
// inside a running process (V8 sizes its heap when it starts), so they are
// written where Keyward is started: the root `start` and `keyward` scripts,
// the `keyward` shebang, and the benchmarks (`npm run bench`, whose servers
// run in its process, and the memory figure's own process), so their figures
// are the production ones. node-flags.test.ts keeps the scripts and the
// shebang equal to this list.

/**
 * `--max-semi-space-size=8` (MB): V8 otherwise grows its young generation up
 * to 64 MB a semi-space on a machine with many GiB of memory, and keeps it
 * committed and resident once grown (134 MB after filling the verification
 * cache with 100,000 tokens), although it is empty after every collection.
 * Bounded, it stays at 16 MiB (two semi-spaces of 8); collections of the young generation run more
 * often, each as cheap (docs/performance.md, "Memory of the cache").
 *
 * An operator with memory to spare overrides it on the command line:
 * @example
 * node --max-semi-space-size=32 packages/cli/bin/keyward.js serve
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
