// The bearer token a connection authenticated with, kept with the connection.
//
// A resource server asks POST /api/v1/verify over keep-alive connections, with
// one credential of its own on every request. Checking that credential's
// checksum and hashing it into its cache key took about a third of the
// caller's authentication under load (docs/performance.md). Both depend only on
// the token's bytes, so they are done once per connection: a later request on
// the same connection presenting the same bytes (compared in constant time)
// reuses the key. Everything that decides still happens on every request, as
// for any token: the cache lookup (so a revocation is seen at once), the
// decision against the owner's current access, the rate limits and the
// counting.
//
// What is kept: the token's bytes and its key, for the connection's life only
// (a WeakMap by socket, so nothing outlives it), and only after the token
// authenticated. A connection's requests all come from its peer, who sent those
// bytes, so nothing here lets one client learn or use another's token.
import { timingSafeEqual } from 'node:crypto';
import { tokenCacheKey } from '../verification/verifier.ts';

interface Remembered {
  bytes: Buffer;
  key: string;
}

export class ConnectionCallers {
  private readonly remembered = new WeakMap<object, Remembered>();

  /** The cache key of `token` if this connection authenticated with these exact bytes before; otherwise undefined. */
  keyFor(connection: object, token: string): string | undefined {
    const known = this.remembered.get(connection);
    if (known === undefined) return undefined;
    const presented = Buffer.from(token);
    // Lengths are not secret (every token of a format has the same); the bytes are compared in constant time.
    if (presented.length !== known.bytes.length || !timingSafeEqual(presented, known.bytes)) return undefined;
    return known.key;
  }

  /** Keeps `token` with the connection: call it only once the token authenticated (it passed its checksum). */
  remember(connection: object, token: string): void {
    this.remembered.set(connection, { bytes: Buffer.from(token), key: tokenCacheKey(token) });
  }
}
