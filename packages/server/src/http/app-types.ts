import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { Actor, Role, ServiceDeps, Session } from '@keyward/core';
import type { KeywardConfig } from '../config/config.ts';
import type { Limiters } from '../rate-limit/limiters.ts';
import type { RedisClient } from '../redis/redis-client.ts';
import type { Database } from '../storage/index.ts';
import type { Verifier } from '../verification/verifier.ts';
import type { UsageRecorder } from '../usage/usage-recorder.ts';
import type { WebhookWorker } from '../webhooks/delivery-worker.ts';
import type { ExpiryWarningJob } from '../webhooks/expiry-warnings.ts';
import type { ExpiredTokenEventJob } from '../jobs/expired-token-events.ts';
import type { RetentionPurgeJob } from '../jobs/retention-purge.ts';
import type { HeapCompactor } from '../memory/heap-compactor.ts';
import type { VerifyFastPath } from './verify-fast-path.ts';
import type { UnusedTokenRevocationJob } from '../jobs/unused-token-revocation.ts';

export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** How a route authenticates: `required` (default), `optional` (the password flow), or `none` (public). */
export type RouteAuth = 'required' | 'optional' | 'none';

export interface AppContext {
  deps: ServiceDeps;
  config: KeywardConfig;
  database: Database;
  limiters: Limiters;
  /** Set when REDIS_URL is: shared rate limits and events; null = everything in this process. */
  redis: RedisClient | null;
  /** The verification path: cache, counters and buffers shared by every entry point. */
  verifier: Verifier;
  /** The one-time first-run setup token, while no user exists. */
  setup: { token: string | null };
  /** Verification counts, buffered and flushed every few seconds: `ctx.usage.record({ organizationId, tokenId, clientId, code })`. */
  usage: UsageRecorder;
  /** Sends the webhook outbox; the server process starts it (`start()`), tests drive it with `runOnce()`. */
  webhooks: WebhookWorker;
  /** Enqueues token.expiring warnings; started with the server, one replica at a time runs it. */
  expiryWarnings: ExpiryWarningJob;
  /** `token.expired`, once per token. */
  expiredTokens: ExpiredTokenEventJob;
  /** The organization policy's `revokeUnusedAfterDays`. */
  unusedTokens: UnusedTokenRevocationJob;
  /** The organization policy's `retentionDays`. */
  retention: RetentionPurgeJob;
  /** Started with the server (unless KEYWARD_HEAP_COMPACTION=false): gives back memory after bursts. */
  heapCompactor: HeapCompactor;
  /** POST /api/v1/verify and GET /api/v1/authz answered in front of Fastify (null with KEYWARD_VERIFY_FAST_PATH=false). */
  verifyFastPath: VerifyFastPath | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
    /** The route passes when the caller holds any of these scopes. */
    scopes?: string[];
    /**
     * The lowest effective permission level the caller needs besides the scope:
     * a token's permission can be below what its scopes suggest.
     */
    minRole?: Role;
  }
  interface FastifyRequest {
    actor: Actor | null;
    session: Session | null;
    /**
     * True on the verification entry points' requests only (a decoration of their
     * own context): the app-wide hooks step aside, that context has its own.
     */
    verificationEntryPoint?: true;
  }
}
