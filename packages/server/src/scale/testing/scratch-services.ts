// A fresh PostgreSQL database and a fresh Redis key prefix for one run of the
// multi-replica suite, both removed at the end: the shared servers keep nothing.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

export interface ScratchDatabase {
  readonly name: string;
  /** The admin URL with the database name replaced. */
  readonly url: string;
  /** Runs one query on the scratch database (a short-lived connection). */
  query<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates `keyward_replicas_<random>` next to the database `adminUrl` names. */
export async function createScratchDatabase(adminUrl: string): Promise<ScratchDatabase> {
  const name = `keyward_replicas_${randomBytes(5).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropping: Promise<void> | undefined;
  return {
    name,
    url: url.href,
    query: (text, values) => withClient(url.href, async (client) => (await client.query(text, values)).rows),
    drop() {
      // FORCE ends the connections of replicas that were killed mid-query.
      dropping ??= withClient(adminUrl, async (client) => void (await client.query(`drop database if exists ${name} with (force)`)));
      return dropping;
    },
  };
}

export interface ScratchRedisPrefix {
  readonly prefix: string;
  /** Deletes every key under the prefix. */
  clean(): Promise<void>;
}

export function createScratchRedisPrefix(redisUrl: string): ScratchRedisPrefix {
  const prefix = `keyward-replicas-${randomBytes(5).toString('hex')}:`;
  return {
    prefix,
    async clean() {
      const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await redis.del(...keys);
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
    },
  };
}
