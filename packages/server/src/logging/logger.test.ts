// Both log formats carry no secret: pretty lines are rendered from the
// redacted record and scrubbed again on their way out.
import { Writable } from 'node:stream';
import { DEFAULT_TOKEN_PREFIXES } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

// Shaped like a personal token; the scrubber matches by shape, not by checksum.
const TOKEN = `${DEFAULT_TOKEN_PREFIXES.personal}_${'A1b2C3d4'.repeat(7).slice(0, 49)}`;

function capture(isTTY = false): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
    { isTTY },
  );
  return { stream, text: () => chunks.join('') };
}

function logEverythingSecret(format: 'json' | 'pretty' | null, isTTY = false): string {
  const out = capture(isTTY);
  const log = createLogger({ level: 'info', format, prefixes: DEFAULT_TOKEN_PREFIXES, stream: out.stream });
  log.info({ req: { method: 'GET', url: `/x?auth=Bearer%20${TOKEN}`, headers: { authorization: `Bearer ${TOKEN}`, cookie: 'keyward_session=s3cr3t-session' } } }, 'incoming');
  log.error({ err: new Error(`bad token ${TOKEN}`) }, 'request failed');
  return out.text();
}

describe('createLogger', () => {
  it('writes JSON lines when asked, or when the stream is not a terminal', () => {
    for (const text of [logEverythingSecret('json', true), logEverythingSecret(null, false)]) {
      const lines = text.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 30, msg: 'incoming' });
    }
  });

  it('writes pretty lines when asked, or on a terminal: time, level, request and message', () => {
    for (const text of [logEverythingSecret('pretty', false), logEverythingSecret(null, true)]) {
      // Colours (on a terminal) stripped: the layout is what matters.
      const plain = text.replaceAll(`${String.fromCharCode(27)}[0m`, '').replace(new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g'), '');
      expect(plain).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}GET \/x\?auth=Bearer%20\[REDACTED\] incoming\n/);
      expect(text).toMatch(/ERROR.* request failed\n {4}Error: bad token \[REDACTED\]\n\s+at /);
      expect(() => JSON.parse(text.split('\n')[0] ?? '')).toThrow();
    }
  });

  it.each(['json', 'pretty'] as const)('redacts credential headers and scrubs token-shaped strings in %s output', (format) => {
    const text = logEverythingSecret(format);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('s3cr3t-session');
    expect(text).toContain('[REDACTED]');
  });
});
