// "3 days ago" with the exact time in a tooltip (on hover and on keyboard focus).
import { Tooltip } from 'radix-ui';

const UNITS: Array<[Intl.RelativeTimeFormatUnit, number]> = [
  ['year', 365 * 86_400_000],
  ['month', 30 * 86_400_000],
  ['week', 7 * 86_400_000],
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const exact = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' });

export function formatRelative(at: Date, now = Date.now()): string {
  const deltaMs = at.getTime() - now;
  for (const [unit, ms] of UNITS) {
    if (Math.abs(deltaMs) >= ms) return relative.format(Math.round(deltaMs / ms), unit);
  }
  return relative.format(0, 'minute');
}

export function RelativeTime({ at, className }: { at: string; className?: string }) {
  const date = new Date(at);
  return (
    <Tooltip.Root>
      <Tooltip.Trigger asChild>
        <time dateTime={at} tabIndex={0} className={className}>
          {formatRelative(date)}
        </time>
      </Tooltip.Trigger>
      <Tooltip.Portal>
        <Tooltip.Content className="tooltip" sideOffset={4}>
          {exact.format(date)}
          <Tooltip.Arrow className="tooltip-arrow" />
        </Tooltip.Content>
      </Tooltip.Portal>
    </Tooltip.Root>
  );
}
