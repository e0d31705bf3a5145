import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from './invalidation-stream.ts';

describe('backoffDelayMs', () => {
  it('doubles up to the ceiling, with jitter over the upper half', () => {
    expect(backoffDelayMs(0, 2000, 30_000, () => 0)).toBe(1000);
    expect(backoffDelayMs(0, 2000, 30_000, () => 1)).toBe(2000);
    expect(backoffDelayMs(3, 2000, 30_000, () => 1)).toBe(16_000);
    expect(backoffDelayMs(10, 2000, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelayMs(1000, 2000, 30_000, () => 0.5)).toBe(22_500);
  });
});
