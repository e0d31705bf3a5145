// A cache of 100,000 compiled tokens is mostly copies of the same few values:
// every row read from storage brings its own copy of the organization id, the
// owner, the scope names, the owner's access and empty lists. Before a token
// enters the cache, the compactor swaps those copies for one shared instance
// each, so memory grows with what is distinct about a token (its id, name,
// digest, dates), not with what it shares with its neighbours. (compileToken
// then keeps only the fields a decision and its answers read.)
//
// Shared values are frozen: a cached record is read-only, and freezing makes
// any accidental write throw instead of leaking into another token.
import type { OwnerSnapshot, ResourceRef, TokenOwner, TokenRecord } from '@keyward/core';

/** Bounds each table, so hostile variety (many organizations, many names) cannot grow them without end. */
const MAX_ENTRIES = 10_000;

const EMPTY_LIST: never[] = Object.freeze([]) as unknown as never[];
const EMPTY_OBJECT: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

class InternTable<T> {
  private readonly entries = new Map<string, T>();

  /** The shared instance for `key`, made by `make` the first time. */
  get(key: string, make: () => T): T {
    const found = this.entries.get(key);
    if (found !== undefined) return found;
    const made = make();
    // Past the bound a value is simply not shared: correctness never depends on the table.
    if (this.entries.size < MAX_ENTRIES) this.entries.set(key, made);
    return made;
  }

  clear(): void {
    this.entries.clear();
  }
}

export class RecordCompactor {
  private readonly strings = new InternTable<string>();
  private readonly owners = new InternTable<TokenOwner>();
  private readonly scopeLists = new InternTable<string[]>();
  private readonly resourceLists = new InternTable<ResourceRef[]>();
  private readonly snapshots = new InternTable<OwnerSnapshot>();

  /**
   * The same token and owner, sharing every repeated value with earlier ones.
   * With `dropDigest` the digest is left out (''): only the lazy re-hash reads
   * a cached token's digest, and a token already hashed under the keyring's
   * current version is never re-hashed from the cache (a keyring change clears
   * it). About 80 bytes a cached token.
   */
  compact(token: TokenRecord, owner: OwnerSnapshot | null, options: { dropDigest?: boolean } = {}): { token: TokenRecord; owner: OwnerSnapshot | null } {
    const compacted: TokenRecord = {
      ...token,
      digest: options.dropDigest ? '' : token.digest,
      organizationId: this.string(token.organizationId),
      kind: this.string(token.kind) as TokenRecord['kind'],
      owner: this.owner(token.owner),
      secretVersion: this.string(token.secretVersion),
      scopes: this.scopes(token.scopes),
      permission: this.string(token.permission) as TokenRecord['permission'],
      resources: this.resources(token.resources),
      allowedIps: token.allowedIps.length === 0 ? EMPTY_LIST : token.allowedIps,
      metadata: isEmpty(token.metadata) ? EMPTY_OBJECT : token.metadata,
      // A token never rotated is its own lineage: one string, not two equal copies (~40 bytes).
      lineageId: token.lineageId === token.id ? token.id : token.lineageId,
    };
    return { token: compacted, owner: owner === null ? null : this.snapshot(owner) };
  }

  /** Forgets every shared value (the cache was cleared; nothing refers to most of them any more). */
  clear(): void {
    this.strings.clear();
    this.owners.clear();
    this.scopeLists.clear();
    this.resourceLists.clear();
    this.snapshots.clear();
  }

  private string(value: string): string {
    return this.strings.get(value, () => value);
  }

  private owner(owner: TokenOwner): TokenOwner {
    return this.owners.get(`${owner.type}\u0000${owner.id}`, () => Object.freeze({ type: this.string(owner.type), id: this.string(owner.id) }) as TokenOwner);
  }

  private scopes(scopes: string[]): string[] {
    if (scopes.length === 0) return EMPTY_LIST;
    return this.scopeLists.get(scopes.join(' '), () => Object.freeze(scopes.map((scope) => this.string(scope))) as string[]);
  }

  private resources(resources: ResourceRef[]): ResourceRef[] {
    if (resources.length === 0) return EMPTY_LIST;
    return this.resourceLists.get(JSON.stringify(resources), () => Object.freeze(resources.map((resource) => Object.freeze({ ...resource }))) as ResourceRef[]);
  }

  // The snapshot is the owner's current access, identical for all of one
  // member's tokens: keyed by its whole content, a change of role or
  // resources gives a different key, never a stale shared value.
  private snapshot(owner: OwnerSnapshot): OwnerSnapshot {
    return this.snapshots.get(JSON.stringify(owner), () =>
      Object.freeze({
        ...owner,
        role: this.string(owner.role) as OwnerSnapshot['role'],
        resourceIds: owner.resourceIds === 'all' ? 'all' : (Object.freeze(owner.resourceIds.map((id) => this.string(id))) as string[]),
        resources: this.resources([...owner.resources]),
        ...(owner.email ? { email: this.string(owner.email) } : {}),
      }),
    );
  }
}

function isEmpty(value: Record<string, unknown>): boolean {
  for (const _ in value) return false;
  return true;
}
