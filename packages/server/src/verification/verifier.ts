// The verification path (SPEC §4): checksum, one HMAC, the in-process cache,
// at most one database round trip on a miss, the pure decision, then the
// counters (rate limits, quota). Every entry point goes through verify():
// POST /verify, introspection, forward-auth and management authentication.
import {
  ServiceUnavailableError,
  clientIdOf,
  compileToken,
  decideVerification,
  hashToken,
  isReusedAfterRotation,
  legacyPrefixOf,
  lookupDigests,
  isWellFormedToken,
  publishSafely,
  refusal,
  revokeLineage,
  type CompiledToken,
  type KeywardEvent,
  type RequestFacts,
  type ServiceDeps,
  type VerificationQuestion,
  type VerifyCode,
  type VerifyResult,
} from '@keyward/core';
import { hash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { clientKeyOf } from '../rate-limit/limiters.ts';
import type { VerificationStore } from '../storage/verification-rows.ts';
import type { UsageRecorder } from '../usage/usage-recorder.ts';
import { LastUseBuffer } from './last-use-buffer.ts';
import { RecordCompactor } from './record-compactor.ts';
import { TokenCache } from './token-cache.ts';
import type { RateDecision, VerificationLimits } from './verification-limits.ts';

export type EntryPoint = 'verify' | 'introspect' | 'authz' | 'management';

export interface UsageSample {
  organizationId: string;
  tokenId: string | null;
  clientId: string | null;
  code: VerifyCode;
}

export interface VerificationObserver {
  verified(entryPoint: EntryPoint, code: VerifyCode, seconds: number): void;
  cache(result: 'hit' | 'miss' | 'negative'): void;
  flushed(buffer: 'last_use' | 'usage', outcome: { count: number; seconds: number; error?: unknown }): void;
}

export interface VerifierOptions {
  deps: ServiceDeps;
  store: VerificationStore;
  limits: VerificationLimits;
  log: FastifyBaseLogger;
  cache?: { max?: number; ttlMs?: number; negativeTtlMs?: number };
  lastUseIntervalMs?: number;
  /** Where usage counts go (buffered by the recorder). */
  usage?: Pick<UsageRecorder, 'record' | 'countAgain'> | undefined;
  observer?: VerificationObserver | undefined;
}

export interface VerifyInput extends Omit<VerificationQuestion, 'resourceExists'> {
  /** Credits to spend on a quota; 0 checks without spending. */
  cost?: number | undefined;
}

export interface VerifyContext {
  entryPoint: EntryPoint;
  /** Whether a VALID answer spends quota credits (not on management calls). */
  spendQuota: boolean;
  /** Where the request came from, for the audit of a reuse detection. */
  request?: RequestFacts | undefined;
  /**
   * The token's cache key (`tokenCacheKey`), when the caller already has it for
   * these exact bytes, which passed the checksum before: a connection's
   * remembered bearer token (http/connection-callers.ts). The checksum and the
   * SHA-256 are skipped; the cache, the decision and the counting are not.
   */
  cacheKey?: string | undefined;
  /**
   * Asks for the outcome's `standing`: what a VALID management verification
   * of the token under `cacheKey` can stand for (see StandingVerification).
   */
  standing?: boolean | undefined;
}

export interface VerifyOutcome {
  result: VerifyResult;
  /** The compiled token, when one was found (whatever the code). */
  compiled: CompiledToken | null;
  /** Seconds until a RATE_LIMITED caller may retry. */
  retryAfterSeconds?: number;
  /** When the context asked for it and the verification can stand for later ones. */
  standing?: StandingVerification;
}

/**
 * A VALID management verification (a request's bearer token) that later
 * verifications of the same token, with the same question from the same
 * address, can stand on instead of being judged again (`Verifier.reaffirm`).
 * The decision is a function of the cached token, the question and the clock,
 * so it holds until one of them changes:
 * - the cached token: every invalidation moves the cache's generation, and a
 *   standing verification ends with the generation it was judged in, so a
 *   revocation, a demotion or any other change is seen at the next request;
 * - the clock: it ends no later than the cache entry it was judged from would
 *   have expired (entries are read afresh after their TTL), the token's expiry
 *   and the end of a rotated-out secret's grace.
 * Only a token with nothing to spend on each request stands (no rate limit of
 * its own or its client's), only one whose digest is current (no re-hash
 * pending), and only on a cache hit decided at once: a decision made after a
 * database read could have raced an invalidation.
 */
export interface StandingVerification {
  readonly compiled: CompiledToken;
  readonly ip: string | null;
  readonly generation: number;
  readonly untilMs: number;
}

const ORG_RESOURCES_TTL_MS = 30_000;

/**
 * The in-process cache's key for a token. It only has to name the token inside
 * this process: a one-shot SHA-256 of a 256-bit random secret is as
 * unguessable as the HMAC, and a fraction of its cost. The keyed HMAC is
 * computed on a miss, for storage. Its 32 bytes as a 32-character one-byte
 * string: 48 bytes of heap a cached token, against 64 for base64 (the key is
 * never shown or stored).
 */
export function tokenCacheKey(plaintext: string): string {
  return hash('sha256', plaintext, 'binary');
}

export class Verifier {
  readonly cache: TokenCache;
  readonly lastUse: LastUseBuffer;
  private readonly options: VerifierOptions;
  private readonly deps: ServiceDeps;
  /** Concurrent misses for one digest share one database read. */
  private readonly inFlight = new Map<string, { generation: number; pending: Promise<CompiledToken | null> }>();
  private readonly rehashing = new Set<string>();
  private readonly orgResources = new Map<string, { ids: ReadonlySet<string>; loadedAtMs: number }>();
  private readonly unsubscribe: () => void;
  /** Shares the values cached tokens have in common (organization, owner, scopes…). */
  private readonly compactor = new RecordCompactor();
  /** The service clock in milliseconds. */
  private readonly nowMs: () => number;

  constructor(options: VerifierOptions) {
    this.options = options;
    this.deps = options.deps;
    const deps = options.deps;
    this.nowMs = deps.nowMs ?? (() => deps.now().getTime());
    this.cache = new TokenCache({
      max: options.cache?.max ?? 100_000,
      ttlMs: options.cache?.ttlMs ?? 60_000,
      negativeTtlMs: options.cache?.negativeTtlMs ?? 5_000,
      negativeMax: 10_000,
      now: this.nowMs,
    });
    this.lastUse = new LastUseBuffer({
      write: (uses) => options.store.writeLastUses(uses),
      intervalMs: options.lastUseIntervalMs ?? 60_000,
      onFlush: (outcome) => {
        if (outcome.error) options.log.warn({ err: outcome.error }, 'could not write last-use times; will retry');
        options.observer?.flushed('last_use', outcome);
      },
    });
    this.unsubscribe = this.deps.bus.subscribe((event) => this.invalidate(event));
  }

  invalidate(event: KeywardEvent): void {
    this.cache.invalidate(event);
    if (event.type === 'organization.changed') this.orgResources.delete(event.organizationId);
  }

  /** Drops every cached answer: the keyring changed, or invalidations may have been missed. */
  reset(): void {
    this.cache.clear();
    this.orgResources.clear();
    this.compactor.clear();
  }

  async verify(plaintext: string, input: VerifyInput, context: VerifyContext): Promise<VerifyOutcome> {
    return this.verifyNow(plaintext, input, context);
  }

  /**
   * verify(), answering at once when the decision needs no I/O (a cache hit
   * with no counters to spend): the outcome itself rather than a promise of it.
   * The fast path answers such a request without a promise or a microtask in
   * between, allocating less on every request (docs/performance.md,
   * "Answers batched per event-loop turn"). It may throw where verify() rejects.
   */
  verifyNow(plaintext: string, input: VerifyInput, context: VerifyContext): VerifyOutcome | Promise<VerifyOutcome> {
    const started = performance.now();
    // One clock read per verification, shared by the cache, the decision and the buffers.
    const nowMs = this.nowMs();
    const pending = this.decide(plaintext, input, context, nowMs);
    if (pending instanceof Promise) return pending.then((outcome) => this.counted(outcome, input, context, nowMs, started));
    let outcome = pending;
    // Judged just now from the cache, in this same synchronous step: nothing was invalidated in between.
    if (context.standing && context.cacheKey !== undefined) {
      const standing = this.standingOf(outcome, context.cacheKey, input, context, nowMs);
      if (standing) outcome = { ...outcome, standing };
    }
    return this.counted(outcome, input, context, nowMs, started);
  }

  /** Counts a decided verification: its metric, its usage sample, the token's last use. */
  private counted(outcome: VerifyOutcome, input: VerifyInput, context: VerifyContext, nowMs: number, started: number): VerifyOutcome {
    const { result, compiled } = outcome;
    this.options.observer?.verified(context.entryPoint, result.code, (performance.now() - started) / 1000);
    const organizationId = compiled?.organizationId ?? input.organizationId;
    if (organizationId !== undefined && context.entryPoint !== 'management') {
      // Another organization's token is counted in the caller's organization as NOT_FOUND, never in the token's.
      const own = compiled !== null && compiled.organizationId === organizationId && result.code !== 'NOT_FOUND';
      // A cached token's VALID answers are always the same sample: counted in the counter its entry keeps, when it is current.
      const same = own && result.code === 'VALID' ? compiled : undefined;
      const usage = this.options.usage;
      if (usage && !(same && usage.countAgain(same, nowMs))) {
        const sample: UsageSample = {
          organizationId: input.organizationId ?? organizationId,
          tokenId: own ? compiled.id : null,
          clientId: own ? clientIdOf(compiled) : null,
          code: result.code,
        };
        usage.record(sample, nowMs, same);
      }
    }
    if (result.valid && compiled) this.lastUse.record(compiled.id, nowMs, input.ip ?? null, compiled);
    return outcome;
  }

  /**
   * Whether a standing verification still holds for a request from `ip`: no
   * invalidation since, its time not up, the same address, the address not
   * blocked. When it holds, it is counted as the verification it stands for
   * (the metrics and the token's last use, as verify() counts a management
   * verification); when it does not, the caller verifies again.
   */
  reaffirm(standing: StandingVerification, ip: string | null): boolean {
    const started = performance.now();
    const nowMs = this.nowMs();
    if (standing.generation !== this.cache.generation || nowMs >= standing.untilMs || standing.ip !== ip) return false;
    if (ip !== null && this.options.limits.isIpBlocked(clientKeyOf(ip))) return false;
    this.options.observer?.verified('management', 'VALID', (performance.now() - started) / 1000);
    this.lastUse.record(standing.compiled.id, nowMs, ip, standing.compiled);
    return true;
  }

  private standingOf(outcome: VerifyOutcome, key: string, input: VerifyInput, context: VerifyContext, nowMs: number): StandingVerification | null {
    const { result, compiled } = outcome;
    if (!result.valid || !compiled || context.entryPoint !== 'management') return null;
    // The management question is the address alone (bearer-actor.ts): anything else is judged every time.
    if (input.scopes !== undefined || input.require !== undefined || input.resource !== undefined || input.organizationId !== undefined) return null;
    if (compiled.rateLimit || compiled.access?.clientRateLimit || compiled.secretVersion !== this.deps.keyring.current.version) return null;
    const cachedForMs = this.cache.remainingMs(key, nowMs);
    let untilMs = nowMs + cachedForMs;
    if (compiled.expiresAtMs !== null) untilMs = Math.min(untilMs, compiled.expiresAtMs);
    if (compiled.rotatedOutAtMs !== null) untilMs = Math.min(untilMs, compiled.rotatedOutAtMs);
    if (untilMs <= nowMs) return null;
    return { compiled, ip: input.ip ?? null, generation: this.cache.generation, untilMs };
  }

  private decide(plaintext: string, input: VerifyInput, context: VerifyContext, nowMs: number): VerifyOutcome | Promise<VerifyOutcome> {
    const ipKey = input.ip ? clientKeyOf(input.ip) : null;
    if (ipKey !== null && this.options.limits.isIpBlocked(ipKey)) return { result: refusal('RATE_LIMITED'), compiled: null };
    // Checksum first: garbage and typos never reach the cache or the database.
    // Imported keys with a configured legacy prefix have no checksum; their prefix and shape stand in for it.
    // A known cache key stands for bytes that passed it already.
    const known = context.cacheKey;
    if (known === undefined && !isWellFormedToken(plaintext, this.deps.prefixes) && legacyPrefixOf(plaintext, this.deps.legacyPrefixes) === null) {
      return this.failed(refusal('MALFORMED'), null, ipKey);
    }

    const found = this.lookup(plaintext, nowMs, known);
    // After a database read, the decision takes the time anew (the read may have taken a while).
    if (found instanceof Promise) return found.then((compiled) => this.decideFor(compiled, plaintext, input, context, ipKey, this.nowMs()));
    return this.decideFor(found, plaintext, input, context, ipKey, nowMs);
  }

  private decideFor(compiled: CompiledToken | null, plaintext: string, input: VerifyInput, context: VerifyContext, ipKey: string | null, nowMs: number): VerifyOutcome | Promise<VerifyOutcome> {
    if (compiled && input.resource !== undefined && compiled.resourceSet === null && !this.hasFreshOrgResources(compiled.organizationId, nowMs)) {
      return this.loadOrgResources(compiled.organizationId).then(() => this.judge(compiled, plaintext, input, context, ipKey, this.nowMs()));
    }
    return this.judge(compiled, plaintext, input, context, ipKey, nowMs);
  }

  private judge(compiled: CompiledToken | null, plaintext: string, input: VerifyInput, context: VerifyContext, ipKey: string | null, nowMs: number): VerifyOutcome | Promise<VerifyOutcome> {
    const question: VerificationQuestion = input.resource === undefined ? input : { ...input, resourceExists: this.resourceExists };
    const result = decideVerification(compiled, question, nowMs);
    if (!result.valid) {
      if (compiled && result.code === 'REVOKED' && isReusedAfterRotation(compiled, nowMs)) {
        return this.revokeReusedLineage(compiled, context).then(() => this.failed(result, compiled, ipKey));
      }
      return this.failed(result, compiled, ipKey);
    }
    // A token found under an older keyring version, or imported as a plain SHA-256, is re-hashed off the request path.
    if (compiled && compiled.secretVersion !== this.deps.keyring.current.version) this.rehashLater(compiled, plaintext);
    // Nothing to count: answer without touching the limiters or the database.
    // A VALID token has its owner's access, which carries the client's limit (shared by the client's tokens).
    if (!compiled!.rateLimit && !compiled!.access!.clientRateLimit && !(compiled!.remaining !== null && context.spendQuota)) return { result, compiled };
    return this.spend(compiled!, result, input, context);
  }

  private failed(result: VerifyResult, compiled: CompiledToken | null, ipKey: string | null): VerifyOutcome | Promise<VerifyOutcome> {
    // Only guessing-shaped failures count against the address; a known token used wrongly is not guessing.
    if (ipKey !== null && (result.code === 'MALFORMED' || result.code === 'NOT_FOUND')) {
      return this.options.limits.recordFailure(ipKey).then(
        () => ({ result, compiled }),
        (error: unknown) => {
          this.options.log.warn({ err: error }, 'could not count a failed verification');
          return { result, compiled };
        },
      );
    }
    return { result, compiled };
  }

  /** Rate limits, then the quota: only a request that passes everything else spends them. */
  private async spend(compiled: CompiledToken, result: VerifyResult, input: VerifyInput, context: VerifyContext): Promise<VerifyOutcome> {
    let rateLimit: RateDecision | null = null;
    const clientId = clientIdOf(compiled);
    const clientRateLimit = compiled.access?.clientRateLimit ?? null;
    if (clientRateLimit && clientId) {
      const client = await this.options.limits.consumeClient(clientId, clientRateLimit);
      if (!client.allowed) return { result: { valid: false, code: 'RATE_LIMITED', rateLimit: client.state }, compiled, retryAfterSeconds: client.retryAfterSeconds };
      rateLimit = client;
    }
    if (compiled.rateLimit) {
      const own = await this.options.limits.consumeToken(compiled.id, compiled.rateLimit);
      if (!own.allowed) return { result: { valid: false, code: 'RATE_LIMITED', rateLimit: own.state }, compiled, retryAfterSeconds: own.retryAfterSeconds };
      rateLimit = own;
    }
    const answer: VerifyResult = rateLimit ? { ...result, rateLimit: rateLimit.state } : { ...result };
    if (compiled.remaining !== null && context.spendQuota) {
      const cost = input.cost ?? 1;
      const spent = await this.storage(() => this.options.store.spendQuota(compiled.id, cost, compiled.refill, this.deps.now()));
      if (spent && !spent.spent) return { result: { valid: false, code: 'USAGE_EXCEEDED', remaining: spent.remaining }, compiled };
      if (spent) answer.remaining = spent.remaining;
    }
    return { result: answer, compiled };
  }

  /** The compiled token from the cache (synchronously), or a promise of one read from storage. */
  private lookup(plaintext: string, nowMs: number, knownKey: string | undefined): CompiledToken | null | Promise<CompiledToken | null> {
    const key = knownKey ?? tokenCacheKey(plaintext);
    const cached = this.cache.lookup(key, nowMs);
    if (cached.kind === 'hit') {
      this.options.observer?.cache('hit');
      return cached.compiled;
    }
    if (cached.kind === 'negative') {
      this.options.observer?.cache('negative');
      return null;
    }
    this.options.observer?.cache('miss');
    // Join a lookup already under way only if nothing was invalidated since it
    // began: a read that raced a revocation must not answer later requests.
    const generation = this.cache.generation;
    const joined = this.inFlight.get(key);
    if (joined && joined.generation === generation) return joined.pending;
    const pending = this.load(plaintext).then((compiled) => {
      this.cache.fill(key, compiled, generation);
      return compiled;
    });
    const entry = { generation, pending };
    this.inFlight.set(key, entry);
    const forget = () => {
      if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
    };
    pending.then(forget, forget);
    return pending;
  }

  private async load(plaintext: string): Promise<CompiledToken | null> {
    // A legacy key is also looked up by its plain SHA-256 (imported as a hash, not used yet).
    const digests = lookupDigests(this.deps.keyring, plaintext, this.deps.legacyPrefixes);
    const found = await this.storage(() => this.options.store.findTokenForVerification(digests));
    if (!found) return null;
    // Only a token awaiting its re-hash keeps its digest in the cache (rehashLater compares against it).
    const dropDigest = found.token.secretVersion === this.deps.keyring.current.version;
    const { token, owner } = this.compactor.compact(found.token, found.owner, { dropDigest });
    return compileToken(this.deps.catalog, token, owner);
  }

  /** Storage failures fail closed with 503, never as an invalid token and never open. */
  private async storage<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      this.options.log.error({ err: error }, 'storage unavailable on the verification path');
      throw new ServiceUnavailableError('Token storage is unavailable; try again shortly.');
    }
  }

  private readonly resourceExists = (organizationId: string, resourceId: string): boolean => {
    return this.orgResources.get(organizationId)?.ids.has(resourceId) ?? false;
  };

  private hasFreshOrgResources(organizationId: string, nowMs: number): boolean {
    const cached = this.orgResources.get(organizationId);
    return cached !== undefined && nowMs - cached.loadedAtMs < ORG_RESOURCES_TTL_MS;
  }

  private async loadOrgResources(organizationId: string): Promise<void> {
    const nowMs = this.nowMs();
    const ids = await this.storage(() => this.options.store.resourceIdsOf(organizationId));
    this.orgResources.set(organizationId, { ids: new Set(ids), loadedAtMs: nowMs });
  }

  private rehashLater(compiled: CompiledToken, plaintext: string): void {
    const { id, digest } = compiled;
    if (this.rehashing.has(id)) return;
    this.rehashing.add(id);
    const next = hashToken(this.deps.keyring, plaintext);
    void this.options.store
      .rehashToken(id, digest, next.digest, next.version)
      .then(() => this.deps.bus.publish({ type: 'tokens.changed', organizationId: compiled.organizationId, tokenIds: [id] }))
      .catch((error: unknown) => this.options.log.warn({ err: error }, 'lazy re-hash failed; it is tried again on a later use'))
      .finally(() => this.rehashing.delete(id));
  }

  /** A rotated-out secret came back after its grace period: someone may hold a copy. */
  private async revokeReusedLineage(compiled: CompiledToken, context: VerifyContext): Promise<void> {
    const request = context.request ?? { ip: null, userAgent: null, requestId: null };
    const revoked = await this.storage(() =>
      this.deps.store.transaction((store) => revokeLineage(this.deps, store, compiled, null, request, 'rotated_out_secret_presented')),
    );
    if (revoked.length > 0) await publishSafely(this.deps, { type: 'tokens.changed', organizationId: compiled.organizationId, tokenIds: revoked });
  }

  /** Writes buffered last uses; graceful shutdown calls it through close(). */
  async flush(): Promise<void> {
    await this.lastUse.flush();
  }

  async close(): Promise<void> {
    this.unsubscribe();
    await this.lastUse.close();
  }
}
