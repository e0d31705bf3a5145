// Where the server's time goes on POST /api/v1/verify, GET /api/v1/authz and
// the bare Fastify ceiling, for a system profiler (docs/performance.md,
// "Where each microsecond goes"). The bench's HTTP setting (10,000 tokens plus
// 5 % unknown ones, 32 connections, autocannon in a worker thread), run in
// rounds of the three back to back so they share the machine's moods. Each run
// prints one JSON line with its monotonic start and stop (the clock
// `perf record -k CLOCK_MONOTONIC` stamps samples with), its requests and this
// thread's CPU, so scripts/profile-windows.ts can cut a profile into runs.
//
//   npm exec -- node --perf-basic-prof scripts/profile-verification-http.ts > runs.jsonl &
//   perf record -k CLOCK_MONOTONIC -F 2000 -e cpu-clock -g -p <pid from the first line> -o perf.data
//   perf script -i perf.data -F comm,time,period,ip,sym | npm exec -- node scripts/profile-windows.ts runs.jsonl
//
// KEYWARD_PROFILE_ROUNDS (3), KEYWARD_PROFILE_SECONDS (6) and
// KEYWARD_PROFILE_TARGETS (bare,verify,authz) change the plan;
// KEYWARD_PROFILE_DELAY_MS (2000) is the pause before the first run, for
// attaching the profiler. Everything runs on 127.0.0.1 and stops by itself.
import { load, openHttpProfile, profileSetting, profileTargets } from './bench-verification.ts';

const rounds = profileSetting('KEYWARD_PROFILE_ROUNDS', 3);
const seconds = profileSetting('KEYWARD_PROFILE_SECONDS', 6);
const delayMs = profileSetting('KEYWARD_PROFILE_DELAY_MS', 2000);
const targets = profileTargets();

const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const monotonicNs = () => process.hrtime.bigint().toString();

const { plans, close } = await openHttpProfile('profile', targets, seconds);
try {
  print({ event: 'ready', pid: process.pid, rounds, seconds, targets });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  for (let round = 1; round <= rounds; round += 1) {
    for (const target of targets) {
      const startNs = monotonicNs();
      const cpuBefore = process.threadCpuUsage();
      const result = await load(plans[target]);
      const cpu = process.threadCpuUsage(cpuBefore);
      const stopNs = monotonicNs();
      const requests = Math.max(1, result.requests);
      print({
        event: 'run',
        target,
        round,
        startNs,
        stopNs,
        requests: result.requests,
        requestsPerSecond: Math.round(result.requestsPerSecond),
        p99Ms: result.p99Ms,
        serverCpuMicrosPerRequest: { user: cpu.user / requests, system: cpu.system / requests },
        statusCodes: result.statusCodes,
      });
    }
  }
} finally {
  await close();
}
