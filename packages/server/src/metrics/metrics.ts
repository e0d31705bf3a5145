// Prometheus metrics with prom-client, one registry per app so several apps in
// one process (tests, embedding) never share or clash.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProblemCode } from '@keyward/core';

export interface Metrics {
  registry: Registry;
  /** Records one answered request; `route` is the route pattern, never the raw URL (ids would explode the labels). */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void;
  countProblem(code: ProblemCode): void;
  /** The number of open `GET /api/v1/events` streams in this process. */
  setOpenEventStreams(count: number): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'keyward' });
  collectDefaultMetrics({ register: registry, prefix: 'keyward_' });
  const duration = new Histogram({
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
  const eventStreams = new Gauge({
    name: 'keyward_event_streams_open',
    help: 'Open invalidation event streams (GET /api/v1/events) in this process.',
    registers: [registry],
  });
  return {
    registry,
    observeRequest(method, route, statusCode, seconds) {
      duration.observe({ method, route, status_code: String(statusCode) }, seconds);
    },
    countProblem(code) {
      problems.inc({ code });
    },
    setOpenEventStreams(count) {
      eventStreams.set(count);
    },
  };
}
