// The Redis connections behind REDIS_URL: shared rate limits and the
// cross-replica event bus. Redis is an accelerator, never a dependency to stay
// up: while it is away, commands fail at once (no offline queue), callers fall
// back to local state, and the connections keep retrying in the background.
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { BaseLogger } from 'pino';

// Loaded with the first connection, not with the server: a single node
// without REDIS_URL never connects, and loading ioredis would cost it about
// 1 MB of heap for nothing (docs/performance.md, "Memory of the cache").
const requireModule = createRequire(import.meta.url);
let redisConstructor: typeof Redis | undefined;

function loadRedis(): typeof Redis {
  redisConstructor ??= (requireModule('ioredis') as { Redis: typeof Redis }).Redis;
  return redisConstructor;
}

export const DEFAULT_REDIS_KEY_PREFIX = 'keyward:';

/**
 * How to reach Redis.
 *
 * @example
 * const redis = openRedisClient({ url: 'redis://cache:6379', log: app.log });
 * const isReachable = await redis.ping();
 */
export interface RedisClientOptions {
  url: string;
  /** Prepended to every key and to the event channel, so deployments (and tests) can share one Redis. Default `keyward:`. */
  keyPrefix?: string;
  log: Pick<BaseLogger, 'info' | 'warn'>;
  /** How long one connection attempt may take. Default 2000. */
  connectTimeoutMs?: number;
}

export interface RedisClient {
  readonly keyPrefix: string;
  /** The command connection (rate limits, publishing). */
  readonly connection: Redis;
  /** Opens another connection with the same settings, closed with this client; a subscriber needs its own. */
  openConnection(name: string): Redis;
  /** Whether Redis answers PING now. Never throws, and answers within the command timeout. */
  ping(): Promise<boolean>;
  /** Closes every connection; safe to call twice. */
  close(): Promise<void>;
}

// Long enough for a busy Redis, short enough that a request never hangs on a dead one.
const COMMAND_TIMEOUT_MS = 1000;
const MAX_RECONNECT_DELAY_MS = 2000;

// Backs off to at most every two seconds and never gives up: a replica must
// take Redis back when it returns, not stay degraded until restarted.
function reconnectDelayMs(attempt: number): number {
  return Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS);
}

export function openRedisClient(options: RedisClientOptions): RedisClient {
  const keyPrefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
  const connections = new Set<Redis>();

  const open = (name: string): Redis => {
    const RedisConnection = loadRedis();
    const connection = new RedisConnection(options.url, {
      keyPrefix,
      connectionName: name,
      connectTimeout: options.connectTimeoutMs ?? 2000,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: reconnectDelayMs,
      maxRetriesPerRequest: 1,
      // Fail fast instead of queueing: the caller has a local fallback, and a
      // queued rate-limit check would hold a login request until Redis returns.
      enableOfflineQueue: false,
      // The event bus subscribes again on every 'ready' itself.
      autoResubscribe: false,
    });
    // Reported once per outage, not once per retry. The listener also keeps a
    // connection error from becoming an uncaught 'error' event that ends the process.
    let isDown = false;
    connection.on('error', (error: Error) => {
      if (isDown) return;
      isDown = true;
      options.log.warn({ err: error, connection: name }, 'Redis is unreachable: rate limits and events fall back to this process');
    });
    connection.on('ready', () => {
      if (!isDown) return;
      isDown = false;
      options.log.info({ connection: name }, 'Redis is reachable again');
    });
    connections.add(connection);
    return connection;
  };

  const connection = open('keyward');
  let closing: Promise<void> | undefined;
  return {
    keyPrefix,
    connection,
    openConnection: (name) => open(`keyward-${name}`),
    async ping() {
      try {
        return (await connection.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    close() {
      closing ??= Promise.all(
        [...connections].map(async (each) => {
          // QUIT lets pending replies arrive; a connection that is not up is simply dropped (and stops retrying).
          if (each.status === 'ready') await each.quit().catch(() => each.disconnect());
          else each.disconnect();
        }),
      ).then(() => undefined);
      return closing;
    },
  };
}
