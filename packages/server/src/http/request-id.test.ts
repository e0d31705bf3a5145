import { describe, expect, it } from 'vitest';
import { newRequestId, requestIdFor } from './security.ts';

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('are shaped as UUIDs and never repeat within a process', () => {
    const ids = Array.from({ length: 10_000 }, () => newRequestId());
    for (const id of ids) expect(id).toMatch(UUID_SHAPE);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('share a random head within a process and count in the last group', () => {
    const [first, second] = [newRequestId(), newRequestId()];
    expect(first.slice(0, 24)).toBe(second.slice(0, 24));
    expect(Number.parseInt(second.slice(24), 16)).toBe(Number.parseInt(first.slice(24), 16) + 1);
  });

  it('keep a harmless incoming id and replace anything else', () => {
    expect(requestIdFor({ headers: { 'x-request-id': 'trace-0001.abc' } })).toBe('trace-0001.abc');
    expect(requestIdFor({ headers: { 'x-request-id': 'short' } })).toMatch(UUID_SHAPE);
    expect(requestIdFor({ headers: { 'x-request-id': 'has space in it' } })).toMatch(UUID_SHAPE);
    expect(requestIdFor({ headers: { 'x-request-id': ['one-one-one', 'two-two-two'] } })).toMatch(UUID_SHAPE);
    expect(requestIdFor({ headers: {} })).toMatch(UUID_SHAPE);
  });
});
