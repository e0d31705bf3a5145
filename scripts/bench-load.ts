// autocannon in a worker thread: the load generator gets its own event loop,
// so it does not queue behind the server it measures (they still share the
// machine's cores). Each request carries the next entry of `variants`, shared
// by all connections, so consecutive requests present different tokens.
import { parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';

export interface LoadPlan {
  /** http://127.0.0.1:<port>: the benchmark never leaves the machine. */
  url: string;
  method: 'GET' | 'POST';
  path: string;
  connections: number;
  durationSeconds: number;
  headers: Record<string, string>;
  /** One per request, cycled: a JSON body (`body`) or an Authorization header (`authorization`). */
  variants: string[];
  vary: 'body' | 'authorization';
}

export interface LoadResult {
  requestsPerSecond: number;
  /** Whole milliseconds: autocannon's latency histogram has 1 ms resolution. */
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Responses by status code. */
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  durationSeconds: number;
}

// Off the main thread autocannon hands back its raw histograms; this (documented,
// untyped) function turns them into the usual result.
const { aggregateResult } = autocannon as unknown as { aggregateResult(results: unknown[], options: { url: string }): autocannon.Result };

async function run(plan: LoadPlan): Promise<LoadResult> {
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(plan.url)) throw new Error(`refusing to load anything but 127.0.0.1, got ${plan.url}`);
  let next = 0;
  const raw = await autocannon({
    url: plan.url,
    connections: plan.connections,
    duration: plan.durationSeconds,
    skipAggregateResult: true,
    // Latency percentiles include the 401s of the unknown tokens, which are part of the mix.
    excludeErrorStats: false,
    requests: [
      {
        method: plan.method,
        path: plan.path,
        headers: plan.headers,
        setupRequest: (request) => {
          const variant = plan.variants[next++ % plan.variants.length] as string;
          return plan.vary === 'body' ? { ...request, body: variant } : { ...request, headers: { ...plan.headers, authorization: variant } };
        },
      },
    ],
  });
  const result = aggregateResult([raw], { url: plan.url });
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = (stats as { count: number }).count;
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
  };
}

parentPort?.postMessage(await run(workerData as LoadPlan));
