import type { ReactNode } from 'react';

/**
 * A table with a caption for screen readers and its column headers; a column
 * named with `hidden:` is labelled for assistive technology only (row actions).
 */
export function DataTable({ caption, columns, children }: { caption: string; columns: string[]; children: ReactNode }) {
  return (
    <table className="tokens">
      <caption className="visually-hidden">{caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th key={column} scope="col">
              {column.startsWith('hidden:') ? <span className="visually-hidden">{column.slice('hidden:'.length)}</span> : column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}
