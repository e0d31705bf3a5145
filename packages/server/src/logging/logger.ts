// Logs never carry secrets: credential headers are redacted by path, and any
// string shaped like a Keyward token is replaced on its way out, wherever in
// the line it appears (a URL, an error message, a field someone added later).
// The pretty format is rendered from the same redacted line, and scrubbed after.
import type { Writable } from 'node:stream';
import { tokenPatternSource, type TokenPrefixes } from '@keyward/core';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from '../config/config.ts';
import { formatPretty } from './pretty-format.ts';

export const REDACTED = '[REDACTED]';

/**
 * Like the scanners' tokenPattern, but without its word boundaries: a token
 * glued to other text, such as `?auth=Bearer%20kw_pat_…` in a logged URL, has
 * no boundary before it and would pass through. Over-redacting a log is harmless.
 */
function scrubPattern(prefixes: TokenPrefixes): RegExp {
  return new RegExp(tokenPatternSource(prefixes).replaceAll('\\b', ''), 'g');
}

type Target = Writable | NodeJS.WriteStream;

/**
 * Replaces anything shaped like one of this deployment's tokens, for logs and
 * for error answers that echo what the caller sent.
 *
 * @example
 * const scrub = createSecretScrubber({ personal: 'kw_pat', client: 'kw_svc' });
 * scrub(`No such scope ${pasted}.`); // 'No such scope [REDACTED].'
 */
export function createSecretScrubber(prefixes: TokenPrefixes): (text: string) => string {
  const pattern = scrubPattern(prefixes);
  return (text) => text.replace(pattern, REDACTED);
}

export function scrubbingDestination(prefixes: TokenPrefixes, target: Target, format: LogFormat = 'json'): DestinationStream {
  const scrub = createSecretScrubber(prefixes);
  const colors = format === 'pretty' && (target as NodeJS.WriteStream).isTTY === true;
  const render = format === 'pretty' ? (line: string) => formatPretty(line, { colors }) : (line: string) => line;
  return { write: (line: string) => void target.write(scrub(render(line))) };
}

/**
 * @example
 * const log = createLogger({ level: 'info', format: null, prefixes: DEFAULT_TOKEN_PREFIXES });
 * // format null: pretty on a terminal, JSON lines when piped to a collector
 */
export function createLogger(options: { level: string; format?: LogFormat | null; prefixes: TokenPrefixes; stream?: Target | undefined }): Logger {
  const target = options.stream ?? process.stdout;
  const format = options.format ?? ((target as NodeJS.WriteStream).isTTY === true ? 'pretty' : 'json');
  return pino(
    {
      level: options.level,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'res.headers["set-cookie"]'],
        censor: REDACTED,
      },
    },
    scrubbingDestination(options.prefixes, target, format),
  );
}
