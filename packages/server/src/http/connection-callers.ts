// The bearer token a connection authenticated with, kept with the connection.
//
// A resource server asks POST /api/v1/verify over keep-alive connections, with
// one credential of its own on every request. Its checksum and its SHA-256
// cache key were the first calls into such code in a request, with the CPU's
// caches cold: ~1.5–2 µs a request under load (docs/performance.md). Both depend only on
// the token's text, so they are done once per connection: a later request on
// the same connection presenting the same text (compared in constant time)
// reuses the key. Everything that decides still happens on every request, as
// for any token: the cache lookup (so a revocation is seen at once), the
// decision against the owner's current access, the rate limits and the
// counting.
//
// The caller's verification itself can stand for the next requests too, while
// nothing it was judged on changed (`StandingVerification` in
// verification/verifier.ts): no invalidation anywhere since, the same address,
// its time not up. Such a request is counted as verified (metrics, last use)
// without the cache lookup and the decision; any change sends it through the
// whole verification again, so a revoked, disabled or demoted caller is still
// refused at its next request.
//
// What is kept: the token and its key, for the connection's life only (a
// WeakMap by socket, so nothing outlives it), and only after the token
// authenticated. A connection's requests all come from its peer, who sent that
// token, so nothing here lets one client learn or use another's token. A heap
// dump taken while the connection is open holds that one token, as one taken
// while any of its requests is answered would; the token cache holds none.
import type { BearerActor } from '../verification/bearer-actor.ts';
import { tokenCacheKey, type StandingVerification } from '../verification/verifier.ts';

/** A connection's caller token, as kept with the connection. */
export interface ConnectionCaller {
  readonly token: string;
  /** The token's cache key (`tokenCacheKey`). */
  readonly key: string;
  /** Its last verification, when that can stand for the next (`Verifier.reaffirm`), with its actor. */
  standing: { verification: StandingVerification; actor: BearerActor } | undefined;
}

export class ConnectionCallers {
  private readonly remembered = new WeakMap<object, ConnectionCaller>();

  /** What this connection keeps of `token`, if it authenticated with this exact token before; otherwise undefined. */
  recall(connection: object, token: string): ConnectionCaller | undefined {
    const known = this.remembered.get(connection);
    return known !== undefined && sameText(known.token, token) ? known : undefined;
  }

  /** Keeps `token` with the connection: call it only once the token authenticated (it passed its checksum). */
  remember(connection: object, token: string): void {
    this.remembered.set(connection, { token, key: tokenCacheKey(token), standing: undefined });
  }
}

/**
 * Whether two strings are equal, in time that depends on their length only:
 * every character is compared, with no early exit. Lengths are not secret
 * (every token of a format has the same). `crypto.timingSafeEqual` compares
 * buffers; encoding the presented token into one on every request cost
 * 2.2 µs under load, more than half the SHA-256 this saves.
 */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index++) difference |= a.charCodeAt(index) ^ b.charCodeAt(index);
  return difference === 0;
}
