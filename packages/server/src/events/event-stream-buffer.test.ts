import type { KeywardEvent } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { createEventStreamBuffer } from './event-stream-buffer.ts';

const orgEvent = (organizationId: string, n: number): KeywardEvent => ({ type: 'tokens.changed', organizationId, tokenIds: [`tok_${n}`] });

describe('createEventStreamBuffer', () => {
  it('numbers events <bootId>-<sequence> from 1, and reports the newest as the position', () => {
    const buffer = createEventStreamBuffer({ bootId: 'b00t' });
    expect(buffer.position()).toBe('b00t-0');
    expect(buffer.append(orgEvent('org_a', 1)).id).toBe('b00t-1');
    expect(buffer.append(orgEvent('org_a', 2)).id).toBe('b00t-2');
    expect(buffer.position()).toBe('b00t-2');
  });

  it('gives each buffer its own random boot id', () => {
    const first = createEventStreamBuffer().bootId;
    expect(first).toMatch(/^[0-9a-f]{12}$/);
    expect(createEventStreamBuffer().bootId).not.toBe(first);
  });

  it("replays only the organization's events after the given id", () => {
    const buffer = createEventStreamBuffer({ bootId: 'b' });
    const ids = [orgEvent('org_a', 1), orgEvent('org_b', 2), orgEvent('org_a', 3), orgEvent('org_a', 4)].map((event) => buffer.append(event).id);
    expect(buffer.eventsAfter(ids[0] as string, 'org_a')?.map((entry) => entry.id)).toEqual(['b-3', 'b-4']);
    expect(buffer.eventsAfter('b-0', 'org_b')?.map((entry) => entry.event)).toEqual([orgEvent('org_b', 2)]);
    expect(buffer.eventsAfter('b-4', 'org_a')).toEqual([]);
  });

  it('answers null for ids of another boot, never issued, or malformed', () => {
    const buffer = createEventStreamBuffer({ bootId: 'b' });
    buffer.append(orgEvent('org_a', 1));
    for (const id of ['other-1', 'b-2', 'b-', 'b-01', 'b--1', 'b-1.0', 'b-99999999999999999999', '', 'b']) {
      expect(buffer.eventsAfter(id, 'org_a'), id).toBeNull();
    }
  });

  it('keeps the last `capacity` events, and resumes only where nothing was forgotten', () => {
    const buffer = createEventStreamBuffer({ bootId: 'b', capacity: 3 });
    for (let n = 1; n <= 5; n += 1) buffer.append(orgEvent('org_a', n));
    // Kept: 3, 4, 5. After 2 nothing is missing; after 1, event 2 is gone.
    expect(buffer.eventsAfter('b-2', 'org_a')?.map((entry) => entry.id)).toEqual(['b-3', 'b-4', 'b-5']);
    expect(buffer.eventsAfter('b-1', 'org_a')).toBeNull();
    expect(buffer.eventsAfter('b-0', 'org_a')).toBeNull();
    expect(buffer.eventsAfter('b-4', 'org_a')?.map((entry) => entry.id)).toEqual(['b-5']);
  });

  it('after a gap, resumes from no position issued before it, but from every one issued after', () => {
    const buffer = createEventStreamBuffer({ bootId: 'b' });
    const before = buffer.append(orgEvent('org_a', 1)).id;
    const positionBefore = buffer.position();
    buffer.markGap();
    expect(buffer.eventsAfter(before, 'org_a')).toBeNull();
    expect(buffer.eventsAfter(positionBefore, 'org_a')).toBeNull();
    const positionAfter = buffer.position();
    expect(positionAfter).not.toBe(positionBefore);
    expect(buffer.eventsAfter(positionAfter, 'org_a')).toEqual([]);
    const next = buffer.append(orgEvent('org_a', 2));
    expect(buffer.eventsAfter(positionAfter, 'org_a')).toEqual([next]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => createEventStreamBuffer({ capacity: 0 })).toThrow(RangeError);
  });
});
