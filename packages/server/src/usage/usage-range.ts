// The time range GET /api/v1/usage answers: defaults, and a bound on the
// number of buckets so one request cannot ask the database for years of minutes.
import { ValidationError } from '@keyward/core';
import type { UsageGranularity } from '../storage/usage-rows.ts';

export const BUCKET_MS: Record<UsageGranularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** The longest range per granularity, in buckets: a day of minutes, 90 days of hours, 400 days. */
export const MAX_USAGE_BUCKETS: Record<UsageGranularity, number> = { minute: 1_440, hour: 2_160, day: 400 };

export const DEFAULT_USAGE_RANGE_MS = 86_400_000;

export interface UsageRange {
  /** Rounded down to the start of its bucket (UTC), so the first bucket is whole. */
  from: Date;
  /** Exclusive. */
  to: Date;
}

function parseInstant(field: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  // The date-time format accepts a leap second (…:60Z), which no Date can hold.
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw ValidationError.field(field, 'is not a valid date-time');
  return new Date(ms);
}

/** `to` defaults to the end of the current minute (so what was just counted shows) and `from` to a day before `to`. */
export function resolveUsageRange(query: { granularity: UsageGranularity; from?: string | undefined; to?: string | undefined }, now: Date): UsageRange {
  const to = parseInstant('to', query.to) ?? new Date(Math.floor(now.getTime() / BUCKET_MS.minute) * BUCKET_MS.minute + BUCKET_MS.minute);
  const from = parseInstant('from', query.from) ?? new Date(to.getTime() - DEFAULT_USAGE_RANGE_MS);
  if (from.getTime() >= to.getTime()) throw ValidationError.field('from', 'must be before to');
  const bucketMs = BUCKET_MS[query.granularity];
  const limit = MAX_USAGE_BUCKETS[query.granularity];
  if (to.getTime() - from.getTime() > limit * bucketMs) {
    throw ValidationError.field('from', `the range may span at most ${limit} ${query.granularity} buckets; narrow it or ask for a coarser granularity`);
  }
  // Epoch milliseconds start at midnight UTC, so flooring them aligns minutes, hours and days alike.
  return { from: new Date(Math.floor(from.getTime() / bucketMs) * bucketMs), to };
}
