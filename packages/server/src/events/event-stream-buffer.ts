// The recent invalidations of this process, numbered, so an SDK verifier that
// lost its event stream can resume without dropping its whole cache.
//
// Ids are `<bootId>-<sequence>`. The boot id is random per buffer (one per app,
// so one per process in production): an id from another replica or from before
// a restart is simply unknown here, and the client is told to start over.
import { randomBytes } from 'node:crypto';
import type { KeywardEvent } from '@keyward/core';

export interface NumberedEvent {
  id: string;
  event: KeywardEvent;
}

export interface EventStreamBuffer {
  readonly bootId: string;
  /** Numbers the event and keeps it, forgetting the oldest beyond capacity. */
  append(event: KeywardEvent): NumberedEvent;
  /** The id of the newest event (`<bootId>-0` before any): where a client that saw everything so far resumes. */
  position(): string;
  /**
   * One organization's events after `lastEventId`, or null when that id cannot
   * be resumed from: another boot, a forged number, or events after it have
   * already been forgotten.
   */
  eventsAfter(lastEventId: string, organizationId: string): NumberedEvent[] | null;
  /**
   * Events may have been missed (the bus lost Redis for a while): no position
   * issued so far can be resumed from, so those clients are told to reset.
   */
  markGap(): void;
}

export interface EventStreamBufferOptions {
  /** Events kept across all organizations; 1,000 by default. */
  capacity?: number;
  bootId?: string;
}

export const DEFAULT_BUFFER_CAPACITY = 1000;

/**
 * @example
 * const buffer = createEventStreamBuffer();
 * bus.subscribe((event) => fanOut(buffer.append(event)));
 * const missed = buffer.eventsAfter(request.headers['last-event-id'], actor.organizationId); // null = reset
 */
export function createEventStreamBuffer(options: EventStreamBufferOptions = {}): EventStreamBuffer {
  const capacity = options.capacity ?? DEFAULT_BUFFER_CAPACITY;
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  const bootId = options.bootId ?? randomBytes(6).toString('hex');
  const idPrefix = `${bootId}-`;
  // A ring: the event numbered n sits at slots[(n - 1) % capacity].
  const slots: NumberedEvent[] = [];
  let lastSequence = 0;
  /** The oldest position a client may resume from; raised past every position issued before a gap. */
  let resumableFrom = 0;

  const sequenceOf = (id: string): number | null => {
    if (!id.startsWith(idPrefix)) return null;
    const digits = id.slice(idPrefix.length);
    if (!/^(0|[1-9][0-9]{0,15})$/.test(digits)) return null;
    return Number(digits);
  };

  return {
    bootId,
    append(event) {
      lastSequence += 1;
      const numbered = { id: `${idPrefix}${lastSequence}`, event };
      slots[(lastSequence - 1) % capacity] = numbered;
      return numbered;
    },
    position: () => `${idPrefix}${lastSequence}`,
    markGap() {
      // A number of its own, never given to an event, so the position after the gap differs from every one before it.
      lastSequence += 1;
      resumableFrom = lastSequence;
    },
    eventsAfter(lastEventId, organizationId) {
      const seen = sequenceOf(lastEventId);
      const oldestKept = Math.max(1, lastSequence - capacity + 1);
      // Resumable only if nothing after `seen` has been forgotten (and `seen` was ever issued).
      if (seen === null || seen > lastSequence || seen < oldestKept - 1 || seen < resumableFrom) return null;
      const missed: NumberedEvent[] = [];
      for (let sequence = seen + 1; sequence <= lastSequence; sequence += 1) {
        const numbered = slots[(sequence - 1) % capacity] as NumberedEvent;
        if (numbered.event.organizationId === organizationId) missed.push(numbered);
      }
      return missed;
    },
  };
}
