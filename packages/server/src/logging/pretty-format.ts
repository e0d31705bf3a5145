// One pino JSON line as a line for people: time, level, message, then the
// fields that matter. Small on purpose (no pino-pretty dependency); the caller
// scrubs secrets from what this returns.
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
// pino's own bookkeeping, and what the line shows in its own way.
const SHOWN_APART = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'err', 'req', 'res', 'reqId', 'responseTime']);

function value(raw: unknown): string {
  return typeof raw === 'string' && /^[^\s"=]+$/.test(raw) ? raw : JSON.stringify(raw);
}

/**
 * @example
 * formatPretty('{"level":30,"time":1767607200000,"msg":"listening"}\n', { colors: false })
 * // → '10:00:00.000 INFO  listening\n'
 */
export function formatPretty(line: string, options: { colors: boolean }): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const label = (LEVELS[level] ?? String(level)).padEnd(5);
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const parts = [time, options.colors ? `\u001b[${COLORS[level] ?? '0'}m${label}\u001b[0m` : label];
  if (typeof entry.reqId === 'string') parts.push(`[${entry.reqId}]`);
  const req = entry.req as { method?: string; url?: string } | undefined;
  if (req?.method) parts.push(`${req.method} ${req.url ?? ''}`);
  const res = entry.res as { statusCode?: number } | undefined;
  if (res?.statusCode !== undefined) parts.push(`→ ${res.statusCode}`);
  if (typeof entry.responseTime === 'number') parts.push(`${entry.responseTime.toFixed(1)}ms`);
  if (entry.msg !== undefined) parts.push(String(entry.msg));
  for (const [key, raw] of Object.entries(entry)) if (!SHOWN_APART.has(key)) parts.push(`${key}=${value(raw)}`);
  let text = parts.filter(Boolean).join(' ');
  const err = entry.err as { message?: string; stack?: string } | undefined;
  if (err) text += `\n    ${(err.stack ?? err.message ?? JSON.stringify(err)).split('\n').join('\n    ')}`;
  return `${text}\n`;
}
