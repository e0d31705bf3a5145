// Polling for the SDK's tests: what arrives over a real network arrives "soon",
// so tests wait for it with a generous bound rather than sleep a fixed time.

/** Polls until `check` holds, failing after `withinMs`; answers the time it took. */
export async function eventually(check: () => Promise<boolean> | boolean, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > withinMs) throw new Error(`not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
