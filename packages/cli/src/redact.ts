// The last line of defence for "never the secret": whatever an error says,
// the secrets this process was handed, and anything shaped like a Keyward
// token, are cut out of it before it reaches the terminal.
import { DEFAULT_TOKEN_PREFIXES, tokenPattern } from '@keyward/core';

const known = new Set<string>();

/** Marks a secret (a credential, a token being verified) as one that must never be printed in an error. */
export function keepSecret(secret: string): void {
  // Nothing that short is a Keyward token, and blanking it would mangle ordinary words.
  if (secret.length >= 8) known.add(secret);
}

export function redact(text: string): string {
  let safe = text;
  for (const secret of known) safe = safe.split(secret).join('[redacted]');
  // By shape alone, checksum or not: a mistyped secret is still a secret.
  return safe.replace(tokenPattern(DEFAULT_TOKEN_PREFIXES), '[redacted]');
}
