// Text for people: aligned tables and "label: value" blocks. Scripts use --json.

/** Rows under a header, columns padded to their widest cell; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Labelled lines, values aligned. */
export function formatFields(fields: Array<[label: string, value: string]>): string {
  const width = Math.max(...fields.map(([label]) => label.length)) + 1;
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width)}  ${value}`).join('\n');
}

/** An ISO timestamp to the minute in UTC, or the fallback when there is none. */
export function formatInstant(iso: string | null | undefined, none: string): string {
  if (!iso) return none;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A secret, set apart on its own line so it is easy to copy, with the only-once warning. */
export function formatSecret(secret: string): string {
  return `\n    ${secret}\n\nThis is the only time Keyward shows this secret: store it now (a secret manager, not a chat or a ticket).`;
}
