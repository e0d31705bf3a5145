// Flag values the server's create body needs in structured form, parsed here
// so a typo is a usage error (exit 2) before any request is made.
import { DEFAULT_TOKEN_PREFIXES, parseToken } from '@keyward/core';
import { UsageError } from '../usage-error.ts';

const ID = /^[a-z]{3}_[0-9A-Za-z]{1,64}$/;

/** A whole number of at least `min`, from a flag. */
export function parseWholeNumber(flag: string, text: string, min = 0): number {
  if (!/^\d{1,16}$/.test(text)) throw new UsageError(`${flag} must be a whole number`);
  const value = Number(text);
  if (value < min) throw new UsageError(`${flag} must be at least ${min}`);
  return value;
}

const WINDOW_UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--rate-limit 100/60s`: at most 100 verifications per 60 seconds (units s, m, h, d; s when omitted). */
export function parseRateLimit(text: string): { limit: number; windowSeconds: number } {
  const match = /^(\d{1,10})\/(\d{1,10})([smhd]?)$/.exec(text);
  if (!match) throw new UsageError('--rate-limit must look like 100/60s (requests per window; units s, m, h, d)');
  return { limit: Number(match[1]), windowSeconds: Number(match[2]) * (WINDOW_UNIT_SECONDS[match[3] || 's'] ?? 1) };
}

/** `--refill 1000/daily`: the quota is topped up to 1000 each day (or month). */
export function parseRefill(text: string): { amount: number; interval: 'daily' | 'monthly' } {
  const match = /^(\d{1,13})\/(daily|monthly)$/.exec(text);
  if (!match) throw new UsageError('--refill must look like 1000/daily or 1000/monthly');
  return { amount: Number(match[1]), interval: match[2] as 'daily' | 'monthly' };
}

/** Repeated `--metadata key=value` into one object of strings. */
export function parseMetadata(pairs: string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals < 1) throw new UsageError('--metadata must look like key=value');
    const key = pair.slice(0, equals);
    if (Object.hasOwn(metadata, key)) throw new UsageError(`--metadata gives "${key}" twice`);
    metadata[key] = pair.slice(equals + 1);
  }
  return metadata;
}

/**
 * A token id (`tok_…`) from the command line. The value is never echoed: a
 * secret pasted where an id belongs must not end up in a terminal log.
 */
export function parseTokenId(command: string, text: string | undefined): string {
  if (text === undefined) throw new UsageError(`${command} needs a token id (tok_…); find it with "keyward token list"`);
  if (parseToken(text, DEFAULT_TOKEN_PREFIXES) || /^kw_[a-z]+_/.test(text)) {
    throw new UsageError(`${command} takes the token's id (tok_…), not its secret; find the id with "keyward token list"`);
  }
  if (!/^tok_[0-9A-Za-z]{1,64}$/.test(text)) throw new UsageError(`${command}: that is not a token id (tok_…); find it with "keyward token list"`);
  return text;
}

/** Any other id the server knows (a client, a resource), checked for shape only. */
export function parseId(flag: string, text: string): string {
  if (!ID.test(text)) throw new UsageError(`${flag} must be an id like cli_… or res_…`);
  return text;
}
