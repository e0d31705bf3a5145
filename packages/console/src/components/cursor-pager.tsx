import { useState } from 'react';

/**
 * Cursor pagination: the API answers a next cursor only, so the cursors of the
 * pages before this one are kept to go back.
 */
export function useCursorPages() {
  const [cursors, setCursors] = useState<string[]>([]);
  return {
    cursor: cursors.at(-1),
    isFirst: cursors.length === 0,
    reset: () => setCursors([]),
    next: (cursor: string) => setCursors((list) => [...list, cursor]),
    previous: () => setCursors((list) => list.slice(0, -1)),
  };
}

export function CursorPager({ pages, nextCursor }: { pages: ReturnType<typeof useCursorPages>; nextCursor: string | null | undefined }) {
  if (pages.isFirst && !nextCursor) return null;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" className="button" disabled={pages.isFirst} onClick={pages.previous}>
        Previous
      </button>
      <button type="button" className="button" disabled={!nextCursor} onClick={() => nextCursor && pages.next(nextCursor)}>
        Next
      </button>
    </nav>
  );
}
