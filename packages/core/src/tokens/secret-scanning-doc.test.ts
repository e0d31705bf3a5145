// docs/secret-scanning.md is what scanners copy: its pattern and its checksum
// code must keep matching exactly the tokens this code issues.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN_PREFIXES, generateToken, tokenPatternSource } from './token-format.ts';

const doc = readFileSync(new URL('../../../../docs/secret-scanning.md', import.meta.url), 'utf8');

function block(language: string): string {
  const match = doc.match(new RegExp('```' + language + '\\n([\\s\\S]*?)```'));
  if (!match?.[1]) throw new Error(`docs/secret-scanning.md has no \`\`\`${language} block`);
  return match[1];
}

describe('docs/secret-scanning.md', () => {
  it('publishes the pattern the server builds for the default prefixes', () => {
    expect(block('regex').trim()).toBe(tokenPatternSource(DEFAULT_TOKEN_PREFIXES));
  });

  it("gives scanners checksum code that finds real tokens and drops look-alikes", async () => {
    const source = block('js').replace("import { crc32 } from 'node:zlib';", '').replace('export function', 'function');
    const findKeywardTokens = new Function('crc32', `${source}\nreturn findKeywardTokens;`)((await import('node:zlib')).crc32) as (text: string) => string[];
    const personal = generateToken(DEFAULT_TOKEN_PREFIXES.personal);
    const service = generateToken(DEFAULT_TOKEN_PREFIXES.client);
    const lastChar = personal.at(-1) === 'A' ? 'B' : 'A';
    const typo = personal.slice(0, -1) + lastChar;
    const text = `config:\n  token: ${personal}\n  other: ${typo}\n  ci: "${service}"\n  nope: kw_pat_short`;
    expect(findKeywardTokens(text)).toEqual([personal, service]);
  });
});
