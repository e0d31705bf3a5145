// When a failed delivery is tried again: exponential backoff with jitter,
// for at least RETRY_WINDOW_MS after the event, then the delivery is failed.

/** A delivery keeps being retried for at least this long after it was enqueued. */
export const RETRY_WINDOW_MS = 24 * 60 * 60 * 1000;
const FIRST_DELAY_MS = 30_000;
const MAX_DELAY_MS = 4 * 60 * 60 * 1000;

/**
 * The wait after the n-th failed attempt (n ≥ 1): 30 s, 1 min, 2 min… capped
 * at 4 h, with "equal jitter" (between half and all of it), so receivers that
 * failed together do not get retried in lockstep, and each wait is never
 * shorter than the previous one.
 */
export function retryDelayMs(failedAttempts: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, Math.min(failedAttempts - 1, 30)));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Whether a delivery enqueued at `enqueuedAt` that just failed at `now` gets another attempt. */
export function isWithinRetryWindow(enqueuedAt: Date, now: Date): boolean {
  return now.getTime() - enqueuedAt.getTime() < RETRY_WINDOW_MS;
}
