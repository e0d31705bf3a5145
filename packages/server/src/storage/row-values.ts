// Column value conversions shared by the row mappers.
import type { DialectCapabilities } from './dialect-capabilities.ts';

export type TimestampReader = DialectCapabilities['readTimestamp'];

export function readOptionalTimestamp(read: TimestampReader, value: Date | string | null): Date | null {
  return value === null ? null : read(value);
}

/** Flags are integers on both dialects, so one schema serves both. */
export function toFlag(value: boolean): number {
  return value ? 1 : 0;
}

export function fromFlag(value: number | boolean): boolean {
  return Number(value) === 1;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value);
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

export function fromOptionalJson<T>(text: string | null): T | null {
  return text === null ? null : fromJson<T>(text);
}

/** Keeps the first occurrence of each id, so a repeated id cannot break a primary key. */
export function uniqueIds(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}
