// Logs never carry secrets: credential headers are redacted by path, and any
// string shaped like a Keyward token is replaced on its way out, wherever in
// the line it appears (a URL, an error message, a field someone added later).
import type { Writable } from 'node:stream';
import { tokenPatternSource, type TokenPrefixes } from '@keyward/core';
import pino, { type DestinationStream, type Logger } from 'pino';

export const REDACTED = '[REDACTED]';

/**
 * Like the scanners' tokenPattern, but without its word boundaries: a token
 * glued to other text, such as `?auth=Bearer%20kw_pat_…` in a logged URL, has
 * no boundary before it and would pass through. Over-redacting a log is harmless.
 */
function scrubPattern(prefixes: TokenPrefixes): RegExp {
  return new RegExp(tokenPatternSource(prefixes).replaceAll('\\b', ''), 'g');
}

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

export function scrubbingDestination(prefixes: TokenPrefixes, target: Writable | NodeJS.WriteStream): DestinationStream {
  const scrub = createSecretScrubber(prefixes);
  return { write: (line: string) => void target.write(scrub(line)) };
}

export function createLogger(options: { level: string; prefixes: TokenPrefixes; stream?: Writable | undefined }): Logger {
  return pino(
    {
      level: options.level,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'res.headers["set-cookie"]'],
        censor: REDACTED,
      },
    },
    scrubbingDestination(options.prefixes, options.stream ?? process.stdout),
  );
}
