// Prometheus metrics with prom-client, one registry per app so several apps in
// one process (tests, embedding) never share or clash.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProblemCode, VerifyCode } from '@keyward/core';
import type { RedisEventBusObserver } from '../events/redis-event-bus.ts';
import { BoundHistogram, type HistogramSeries } from './bound-histogram.ts';
import type { EntryPoint, VerificationObserver } from '../verification/verifier.ts';

type CacheResult = Parameters<VerificationObserver['cache']>[0];
const CACHE_RESULTS: readonly CacheResult[] = ['hit', 'miss', 'negative'];

/** Figures read when /metrics is scraped, not on every change. */
export interface GaugeSources {
  /** Tokens whose last use waits to be written. */
  lastUsePending(): number;
  /** Verifications counted and not yet written. */
  usagePending(): number;
  /** Events Redis refused, kept to publish again (Redis bus only). */
  unsentEvents?: (() => number) | undefined;
  /** The PostgreSQL pool (null on SQLite). */
  pool?: (() => { total: number; idle: number; waiting: number; max: number } | null) | undefined;
}

export interface Metrics {
  registry: Registry;
  /** Records one answered request; `route` is the route pattern, never the raw URL (ids would explode the labels). */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void;
  countProblem(code: ProblemCode): void;
  /** Verifications by entry point and code, their latency, cache results and buffer flushes. */
  verification: VerificationObserver;
  /** The number of open `GET /api/v1/events` streams in this process. */
  setOpenEventStreams(count: number): void;
  /** Cross-replica event delivery: lag and resubscriptions after Redis outages. */
  bus: RedisEventBusObserver;
  /** One heap compaction (memory/heap-compactor.ts) and its pause. */
  heapCompacted(seconds: number): void;
  /** Registers what the buffer and pool gauges read at scrape time; call once. */
  watch(sources: GaugeSources): void;
}

interface VerificationCount {
  entryPoint: EntryPoint;
  code: VerifyCode;
  count: number;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'keyward' });
  collectDefaultMetrics({ register: registry, prefix: 'keyward_' });
  // The two histograms observed on every request are BoundHistograms (see its header).
  const duration = new BoundHistogram({
    name: 'keyward_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const problems = new Counter({
    name: 'keyward_http_problems_total',
    help: 'Error answers by problem code (unauthenticated, rate_limited, internal, ...).',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  // Verifications and cache lookups happen hundreds of thousands of times a
  // second: each is a plain integer increment here, handed to prom-client
  // when /metrics is scraped (collect), so the counters read the same.
  const verificationCounts: VerificationCount[] = [];
  new Counter({
    name: 'keyward_verifications_total',
    help: 'Token verifications by entry point (verify, introspect, authz, management) and outcome code.',
    labelNames: ['entry_point', 'code'] as const,
    registers: [registry],
    collect() {
      for (const counted of verificationCounts) {
        if (counted.count === 0) continue;
        this.inc({ entry_point: counted.entryPoint, code: counted.code }, counted.count);
        counted.count = 0;
      }
    },
  });
  const verifyDuration = new BoundHistogram({
    name: 'keyward_verify_duration_seconds',
    help: 'Time to decide one verification, from checksum to counters, by entry point.',
    labelNames: ['entry_point'] as const,
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
    registers: [registry],
  });
  const cacheCounts: Record<CacheResult, number> = { hit: 0, miss: 0, negative: 0 };
  new Counter({
    name: 'keyward_token_cache_lookups_total',
    help: 'Verification cache lookups: hit, miss (a database read), negative (a remembered unknown token).',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      for (const result of CACHE_RESULTS) {
        if (cacheCounts[result] === 0) continue;
        this.inc({ result }, cacheCounts[result]);
        cacheCounts[result] = 0;
      }
    },
  });
  const flushes = new Counter({
    name: 'keyward_buffer_flushes_total',
    help: 'Buffered writes off the verification path, by buffer and outcome.',
    labelNames: ['buffer', 'outcome'] as const,
    registers: [registry],
  });
  const flushedRows = new Counter({
    name: 'keyward_buffer_flushed_rows_total',
    help: 'Rows written by buffer flushes.',
    labelNames: ['buffer'] as const,
    registers: [registry],
  });
  const flushDuration = new Histogram({
    name: 'keyward_buffer_flush_duration_seconds',
    help: 'Time to write one buffer flush.',
    labelNames: ['buffer'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const eventStreams = new Gauge({
    name: 'keyward_event_streams_open',
    help: 'Open invalidation event streams (GET /api/v1/events) in this process.',
    registers: [registry],
  });
  const busLag = new Histogram({
    name: 'keyward_event_bus_lag_seconds',
    help: 'Time from another replica publishing an invalidation to this replica hearing it through Redis (wall clocks).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });
  const busResubscriptions = new Counter({
    name: 'keyward_event_bus_resubscriptions_total',
    help: 'Times the event bus subscribed to Redis again after losing it; each one dropped every cached token.',
    registers: [registry],
  });
  let sources: GaugeSources | null = null;
  new Gauge({
    name: 'keyward_buffer_pending',
    help: 'Entries waiting in a write buffer: last_use (tokens), usage (verifications), unsent_events (invalidations Redis refused).',
    labelNames: ['buffer'] as const,
    registers: [registry],
    collect() {
      if (!sources) return;
      this.set({ buffer: 'last_use' }, sources.lastUsePending());
      this.set({ buffer: 'usage' }, sources.usagePending());
      if (sources.unsentEvents) this.set({ buffer: 'unsent_events' }, sources.unsentEvents());
    },
  });
  new Gauge({
    name: 'keyward_db_pool_connections',
    help: 'PostgreSQL pool connections by state: total open, idle, waiting (requests queued for one), max (the pool size).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const pool = sources?.pool?.();
      if (!pool) return;
      for (const state of ['total', 'idle', 'waiting', 'max'] as const) this.set({ state }, pool[state]);
    },
  });
  const heapCompactions = new Histogram({
    name: 'keyward_heap_compaction_seconds',
    help: 'Heap compactions after bursts (KEYWARD_HEAP_COMPACTION) and how long each paused the process.',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // Bound label children, found by the labels themselves (constant strings and
  // status numbers, whose hashes are kept) rather than by a key string built on
  // every request: these run on every request and every verification.
  const requestHistograms = new Map<string, Map<string, Map<number, HistogramSeries>>>();
  const entryPoints = new Map<EntryPoint, { histogram: HistogramSeries; counts: Map<VerifyCode, VerificationCount> }>();
  return {
    registry,
    verification: {
      verified(entryPoint, code, seconds) {
        let series = entryPoints.get(entryPoint);
        if (!series) entryPoints.set(entryPoint, (series = { histogram: verifyDuration.labels(entryPoint), counts: new Map() }));
        let counted = series.counts.get(code);
        if (!counted) {
          series.counts.set(code, (counted = { entryPoint, code, count: 0 }));
          verificationCounts.push(counted);
        }
        counted.count++;
        series.histogram.observe(seconds);
      },
      cache(result) {
        cacheCounts[result]++;
      },
      flushed(buffer, outcome) {
        flushes.inc({ buffer, outcome: outcome.error ? 'failed' : 'ok' });
        flushedRows.inc({ buffer }, outcome.count);
        flushDuration.observe({ buffer }, outcome.seconds);
      },
    },
    observeRequest(method, route, statusCode, seconds) {
      // Route patterns, methods and statuses are few: bind each combination once.
      let methods = requestHistograms.get(route);
      if (!methods) requestHistograms.set(route, (methods = new Map()));
      let statuses = methods.get(method);
      if (!statuses) methods.set(method, (statuses = new Map()));
      let histogram = statuses.get(statusCode);
      if (!histogram) statuses.set(statusCode, (histogram = duration.labels(method, route, String(statusCode))));
      histogram.observe(seconds);
    },
    countProblem(code) {
      problems.inc({ code });
    },
    heapCompacted(seconds) {
      heapCompactions.observe(seconds);
    },
    setOpenEventStreams(count) {
      eventStreams.set(count);
    },
    bus: {
      delivered(lagSeconds) {
        busLag.observe(lagSeconds);
      },
      resubscribed() {
        busResubscriptions.inc();
      },
    },
    watch(watched) {
      sources = watched;
    },
  };
}
