// Opaque list cursors: base64url of the last item's time and id, so a page
// boundary is stable while rows are added.
import { ValidationError } from './errors.ts';
import type { PageAfter } from './ports/store.ts';
import type { Page } from './types.ts';

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 100;

export function encodeCursor(after: PageAfter): string {
  return Buffer.from(`${after.at.toISOString()}|${after.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): PageAfter | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const [iso, id, extra] = text.split('|');
  const at = iso ? new Date(iso) : new Date(Number.NaN);
  if (!id || extra !== undefined || Number.isNaN(at.getTime()) || at.toISOString() !== iso) {
    throw ValidationError.field('cursor', 'is not a cursor this server issued');
  }
  return { at, id };
}

/** Asks storage for one row more than the page holds, to know whether another page follows. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => PageAfter): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(keyOf(last)) : null };
}
