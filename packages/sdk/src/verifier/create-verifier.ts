// createVerifier(): asks POST /api/v1/verify, keeps the answers that are safe
// to reuse, and drops them when the server's event stream says they changed.
import { legacyPrefixOf } from '../../../core/src/tokens/legacy-prefix.ts';
import { DEFAULT_TOKEN_PREFIXES, isWellFormedToken, type TokenPrefixes } from '../../../core/src/tokens/token-format.ts';
import { KeywardRequestError, KeywardUnavailableError } from '../errors.ts';
import { openInvalidationStream, type InvalidationEvent, type InvalidationStream, type InvalidationStreamOptions } from '../events/invalidation-stream.ts';
import { createAnswerCache, type AnswerCacheOptions } from './answer-cache.ts';
import type { VerifyAnswer, VerifyQuestion } from './verify-answer.ts';

export interface VerifierOptions {
  /** Where Keyward listens, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** A service token holding `keyward:verify`. */
  token: string;
  /** The answer cache; `false` asks the server every time. */
  cache?: AnswerCacheOptions | false;
  /** Listen to GET /api/v1/events to drop cached answers at once (default true). */
  events?: boolean | InvalidationStreamOptions;
  /** Abandon a verification after this long (default 5 s): it rejects with KeywardUnavailableError. */
  timeoutMs?: number;
  /** The server's token prefixes, if it was configured with others than `kw_pat`/`kw_svc`. */
  tokenPrefixes?: TokenPrefixes;
  /**
   * The server's `legacyTokenPrefixes` (keys imported from another system):
   * keys with one skip the local checksum check and are asked about.
   *
   * @example
   * createVerifier({ baseUrl, token, legacyTokenPrefixes: ['sk_live_'] })
   */
  legacyTokenPrefixes?: readonly string[];
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface Verifier {
  /**
   * Judges a presented token. Resolves with the server's answer (refusals
   * included: branch on `code`); rejects with KeywardUnavailableError when
   * Keyward cannot be asked, never with a guess.
   */
  verify(presented: string, question?: VerifyQuestion): Promise<VerifyAnswer>;
  /** Whether the invalidation stream is live: 'off' when events are disabled. */
  readonly streamState: 'off' | 'connecting' | 'open' | 'closed';
  /** Resolves once the invalidation stream is live. */
  whenStreamOpen(): Promise<void>;
  /** Ends the invalidation stream; verify() still works, bounded by the TTL alone. */
  close(): Promise<void>;
}

const MALFORMED: VerifyAnswer = Object.freeze({ valid: false, code: 'MALFORMED' });

/**
 * The cache key of a question, without the token. A route asks the same
 * question over and over, so the last one is remembered (by value: a caller
 * may reuse and change its scopes array) and a hit builds no string.
 */
function createQuestionKeys(): (question: VerifyQuestion) => string {
  let lastScopes: string[] = [];
  let lastRequire: string | undefined;
  let lastResource: string | undefined;
  let lastIp: string | undefined;
  let lastKey: string | undefined;
  return (question) => {
    const scopes = question.scopes ?? [];
    if (
      lastKey !== undefined &&
      question.require === lastRequire &&
      question.resource === lastResource &&
      question.ip === lastIp &&
      scopes.length === lastScopes.length &&
      scopes.every((scope, i) => scope === lastScopes[i])
    ) {
      return lastKey;
    }
    lastScopes = [...scopes];
    lastRequire = question.require;
    lastResource = question.resource;
    lastIp = question.ip;
    // Scopes are all required, so their order does not change the answer.
    lastKey = JSON.stringify([[...scopes].sort(), question.require ?? null, question.resource ?? null, question.ip ?? null]);
    return lastKey;
  };
}

/**
 * Creates a verifier for a resource server.
 *
 * @example
 * const verifier = createVerifier({ baseUrl: 'http://127.0.0.1:8080', token: process.env.KEYWARD_VERIFY_TOKEN! });
 * const answer = await verifier.verify(presented, { scopes: ['scans:read'] });
 * if (answer.valid) console.log(answer.token!.owner);
 * await verifier.close();
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (!options.baseUrl) throw new TypeError('createVerifier: baseUrl is required');
  if (!options.token) throw new TypeError('createVerifier: token (a keyward:verify service token) is required');
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const prefixes = options.tokenPrefixes ?? DEFAULT_TOKEN_PREFIXES;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const cache = options.cache === false ? undefined : createAnswerCache(options.cache ?? {});
  const questionKey = createQuestionKeys();
  // Bumped by every invalidation: an answer asked for before one must not be cached after it.
  let generation = 0;

  function invalidate(event: InvalidationEvent): void {
    generation++;
    if (!cache) return;
    switch (event.type) {
      case 'tokens.changed':
        cache.dropTokens(event.tokenIds);
        break;
      case 'member.changed':
        cache.dropOwner('user', event.userId);
        break;
      case 'client.changed':
        cache.dropOwner('client', event.clientId);
        break;
      default:
        // The stream only carries the verifier's own organization: everything cached belongs to it.
        cache.clear();
    }
  }
  function reset(): void {
    generation++;
    cache?.clear();
  }

  const eventsOption = options.events ?? true;
  let stream: InvalidationStream | undefined;
  if (eventsOption !== false && cache) {
    stream = openInvalidationStream(
      { ...(eventsOption === true ? {} : eventsOption), url: `${baseUrl}/api/v1/events`, token: options.token, fetch: doFetch },
      { onInvalidate: invalidate, onReset: reset },
    );
  }

  async function ask(presented: string, question: VerifyQuestion): Promise<VerifyAnswer> {
    let response: Response;
    try {
      response = await doFetch(`${baseUrl}/api/v1/verify`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ token: presented, ...question }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new KeywardUnavailableError(`Keyward could not be reached at ${baseUrl}.`, { cause: error });
    }
    if (response.status === 200) {
      try {
        return (await response.json()) as VerifyAnswer;
      } catch (error) {
        throw new KeywardUnavailableError('Keyward answered with an unreadable body.', { status: 200, cause: error });
      }
    }
    const problem = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    const detail = typeof problem?.detail === 'string' ? `: ${problem.detail}` : '';
    if (response.status === 400) throw new KeywardRequestError(`Keyward refused the question${detail}`, 400, problem);
    // 401/403: our own credential is refused; 429/5xx: Keyward is overloaded or away. Either way, no answer.
    throw new KeywardUnavailableError(`Keyward answered ${response.status}${detail}`, { status: response.status });
  }

  return {
    async verify(presented, question = {}) {
      if (typeof presented !== 'string') return MALFORMED;
      // A hit first: only a token that passed the checksum below was ever cached,
      // so one found needs no second check (cost is not in the question:
      // answers about quotas are never cached).
      const key = cache ? questionKey(question) : '';
      const cached = cache?.get(presented, key);
      if (cached) return cached;
      // Checksum next: typos and garbage never cost a round trip.
      if (!isWellFormedToken(presented, prefixes) && legacyPrefixOf(presented, options.legacyTokenPrefixes) === null) return MALFORMED;
      const wire: VerifyQuestion = {};
      if (question.scopes && question.scopes.length > 0) wire.scopes = [...question.scopes];
      if (question.require !== undefined) wire.require = question.require;
      if (question.resource !== undefined) wire.resource = question.resource;
      if (question.ip !== undefined) wire.ip = question.ip;
      if (question.cost !== undefined) wire.cost = question.cost;
      if (!cache) return ask(presented, wire);

      const asked = generation;
      const answer = await ask(presented, wire);
      // Fill only if no invalidation arrived during the lookup;
      // otherwise a slow answer could put a revoked token back.
      if (asked === generation) cache.fill(presented, key, answer);
      return answer;
    },
    get streamState() {
      return stream ? stream.state : 'off';
    },
    whenStreamOpen() {
      return stream ? stream.whenOpen() : Promise.reject(new Error('this verifier has no invalidation stream'));
    },
    async close() {
      stream?.close();
    },
  };
}
