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
import { rm } from 'node:fs/promises';
import { DEFAULT_TOKEN_PREFIXES, generateToken, newKeyringEntry, parseKeyring } from '@keyward/core';
import type { VerifyContext } from '../packages/server/src/verification/verifier.ts';
import { insertTokens, load, mix, openInstance, profileSetting, profileTargets, QUESTION_SCOPES, startHttpTargets } from './bench-verification.ts';


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

const keyring = parseKeyring(newKeyringEntry('v1'));
const instance = await openInstance(keyring, 'allocations');
let http: Awaited<ReturnType<typeof startHttpTargets>> | null = null;
const session = new Session();
try {
  const valid: string[] = [];
  await insertTokens(instance, keyring, 10_000, (_index, plaintext) => valid.push(plaintext));
  const tokens = mix(valid, Array.from({ length: 500 }, () => generateToken(DEFAULT_TOKEN_PREFIXES.personal)));
  const context: VerifyContext = { entryPoint: 'verify', spendQuota: true };
  for (const token of tokens) await instance.context.verifier.verify(token, { scopes: QUESTION_SCOPES, organizationId: instance.organizationId }, context);
  http = await startHttpTargets(instance, tokens, { connections: 32, durationSeconds: seconds });
  const { plans } = http;
  // Code compiled and connections made before anything is sampled.
  for (const target of targets) await load({ ...plans[target], durationSeconds: 1 });
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
  await http?.close();
  await instance.app.close();
  await instance.database.close();
  await rm(instance.dataDir, { recursive: true, force: true });
}
