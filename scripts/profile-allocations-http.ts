// Bytes the server allocates a request, by allocating function, on the bare
// Fastify ceiling, POST /api/v1/verify and GET /api/v1/authz under the bench's
// HTTP load (docs/performance.md, "Answers batched per event-loop turn").
// Young-generation collections on this path cost in proportion to what a
// request allocates, so this is a steadier figure than throughput on a noisy
// machine: V8's sampling heap profiler, counting objects the collector has
// already freed too, on the server's isolate only (autocannon runs in a worker).
//
//   npm exec -- node scripts/profile-allocations-http.ts
//
// KEYWARD_PROFILE_TARGETS (bare,verify,authz), KEYWARD_PROFILE_SECONDS (4) and
// KEYWARD_PROFILE_TOP (25 functions a target) change the plan. Everything runs
// on 127.0.0.1 and stops by itself.
import { Session } from 'node:inspector/promises';
import { load, openHttpProfile, profileSetting, profileTargets } from './bench-verification.ts';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

const seconds = profileSetting('KEYWARD_PROFILE_SECONDS', 4);
const top = profileSetting('KEYWARD_PROFILE_TOP', 25);
const targets = profileTargets();

/** Bytes allocated in each function (its own allocations, not its callees'), over the whole profile. */
function bytesByFunction(head: SamplingNode): { total: number; byFunction: Map<string, number> } {
  const byFunction = new Map<string, number>();
  let total = 0;
  const pending = [head];
  for (let node = pending.pop(); node; node = pending.pop()) {
    if (node.selfSize > 0) {
      const { functionName, url, lineNumber } = node.callFrame;
      const where = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(packages|node_modules)\//, '$1/')}:${lineNumber + 1}`;
      byFunction.set(where, (byFunction.get(where) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    pending.push(...node.children);
  }
  return { total, byFunction };
}

const { plans, close } = await openHttpProfile('allocations', targets, seconds);
const session = new Session();
try {
  session.connect();
  for (const target of targets) {
    await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    const result = await load(plans[target]);
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SamplingNode } };
    const requests = Math.max(1, result.requests);
    const { total, byFunction } = bytesByFunction(profile.head);
    console.log(`${target}: ${result.requests} requests, ${Math.round(total / requests)} bytes a request`);
    for (const [where, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${String(Math.round(bytes / requests)).padStart(7)}  ${where}`);
  }
} finally {
  session.disconnect();
  await close();
}
