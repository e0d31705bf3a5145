import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundHistogram } from './bound-histogram.ts';

const BUCKETS = [0.00001, 0.0001, 0.001, 0.01, 0.1];

describe('BoundHistogram', () => {
  it('scrapes exactly as prom-client’s own Histogram for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    for (const registry of [ours, theirs]) registry.setDefaultLabels({ service: 'keyward' });
    const bound = new BoundHistogram({ name: 'keyward_test_seconds', help: 'A test.', labelNames: ['entry_point'], buckets: BUCKETS, registers: [ours] });
    const reference = new Histogram({ name: 'keyward_test_seconds', help: 'A test.', labelNames: ['entry_point'], buckets: BUCKETS, registers: [theirs] });
    // Values on, between, below and above the bounds, in two series.
    const observations: [string, number][] = [
      ['verify', 0.000001], ['verify', 0.00001], ['verify', 0.00002], ['verify', 0.1], ['verify', 0.5], ['verify', 3],
      ['authz', 0.001], ['authz', 0.0011], ['authz', 0],
    ];
    for (const [entryPoint, seconds] of observations) {
      bound.labels(entryPoint).observe(seconds);
      reference.labels(entryPoint).observe(seconds);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    const labelsOf = async (registry: Registry) => (await registry.getMetricsAsJSON())[0]!.values.map(({ labels, value, ...rest }) => ({ labels, value, metricName: (rest as { metricName?: string }).metricName }));
    expect(await labelsOf(ours)).toEqual(await labelsOf(theirs));
  });

  it('hands out one series per label combination and forgets them all on reset', async () => {
    const registry = new Registry();
    const bound = new BoundHistogram({ name: 'keyward_test_seconds', help: 'A test.', labelNames: ['method', 'route'], buckets: BUCKETS, registers: [registry] });
    expect(bound.labels('GET', '/a')).toBe(bound.labels('GET', '/a'));
    expect(bound.labels('GET', '/a')).not.toBe(bound.labels('GET', '/b'));
    bound.labels('GET', '/a').observe(0.002);
    expect(await registry.metrics()).toContain('keyward_test_seconds_count{method="GET",route="/a"} 1');
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('keyward_test_seconds_count');
  });

  it('refuses the wrong number of label values and buckets that do not ascend', () => {
    const registry = new Registry();
    const bound = new BoundHistogram({ name: 'keyward_a_seconds', help: 'A test.', labelNames: ['method', 'route'], buckets: BUCKETS, registers: [registry] });
    expect(() => bound.labels('GET')).toThrow(RangeError);
    expect(() => new BoundHistogram({ name: 'keyward_b_seconds', help: 'A test.', labelNames: [], buckets: [0.1, 0.01], registers: [registry] })).toThrow(RangeError);
  });
});
