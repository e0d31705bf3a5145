// The audit export's two formats: NDJSON (one JSON object a line, as the
// audit API answers them) and CSV (RFC 4180 quoting, and safe to open in a
// spreadsheet: a cell that would start a formula is prefixed with a quote).
import type { AuditEvent } from '@keyward/core';
import { auditView } from './views.ts';

export type AuditExportFormat = 'ndjson' | 'csv';

export const AUDIT_EXPORT_CONTENT_TYPES: Record<AuditExportFormat, string> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

export const AUDIT_CSV_COLUMNS = ['id', 'at', 'action', 'actorType', 'actorId', 'authMethod', 'organizationId', 'targetType', 'targetId', 'ip', 'userAgent', 'requestId', 'details'] as const;

/**
 * One CSV cell. Spreadsheets run a cell starting with = + - @ (or a tab or
 * carriage return, which some strip first) as a formula; a user agent or a
 * name is attacker-chosen, so such cells get a leading apostrophe (OWASP's
 * CSV-injection advice). Then RFC 4180: quote when needed, double the quotes.
 */
export function csvCell(value: string | null): string {
  if (value === null) return '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function csvHeader(): string {
  return `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
}

export function csvLine(event: AuditEvent): string {
  const cells = [
    event.id,
    event.at.toISOString(),
    event.action,
    event.actor.type,
    event.actor.id,
    event.authMethod,
    event.organizationId,
    event.target?.type ?? null,
    event.target?.id ?? null,
    event.ip,
    event.userAgent,
    event.requestId,
    JSON.stringify(event.details),
  ];
  return `${cells.map(csvCell).join(',')}\r\n`;
}

export function ndjsonLine(event: AuditEvent): string {
  return `${JSON.stringify(auditView(event))}\n`;
}

/** Lines of the export, header first for CSV; pulled one at a time by the response stream. */
export async function* auditExportLines(events: AsyncIterable<AuditEvent>, format: AuditExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader();
  for await (const event of events) yield format === 'csv' ? csvLine(event) : ndjsonLine(event);
}
