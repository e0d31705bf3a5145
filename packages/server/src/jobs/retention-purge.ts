// The retention purge: for an organization with `retentionDays` set, deletes
// what is older than that — tokens revoked or expired that long ago (their
// token_resources and token_expiry_warnings rows first, one transaction per
// batch), audit events, usage counts, and webhook deliveries that were
// delivered or gave up, with their events. Live tokens are never candidates,
// and nothing here runs during verification: a token is only ever deleted by
// this job, long after verification started answering REVOKED or EXPIRED.
import type { Kysely } from 'kysely';
import type { Schema } from '../storage/schema.ts';
import { DAY_MS, LeasedJob, type LeasedJobOptions } from './leased-job.ts';

const HOUR_MS = 3_600_000;
const DEFAULT_INTERVAL_MS = 60 * 60_000;
const BATCH_SIZE = 500;
/** Batches per kind per organization per round: a large backlog is worked off over several rounds, never in one long lock. */
const MAX_BATCHES = 20;

export interface PurgeCounts {
  tokens: number;
  auditEvents: number;
  usageCounts: number;
  webhookDeliveries: number;
  webhookEvents: number;
}

/** Runs `batch` until it deletes less than a full batch, or MAX_BATCHES times; answers the rows deleted. */
async function inBatches(batch: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let round = 0; round < MAX_BATCHES; round++) {
    const deleted = await batch();
    total += deleted;
    if (deleted < BATCH_SIZE) break;
  }
  return total;
}

const deletedCount = (result: { numDeletedRows: bigint }) => Number(result.numDeletedRows);

/** Tokens of the organization that stopped working before `cutoff`: revoked, expired, or rotated out with their grace period over. */
function deadBefore(db: Kysely<Schema>, organizationId: string, cutoff: Date) {
  return db
    .selectFrom('tokens')
    .select('id')
    .where('organizationId', '=', organizationId)
    .where((eb) =>
      eb.or([
        eb('revokedAt', '<=', cutoff),
        eb('expiresAt', '<=', cutoff),
        eb.and([eb('rotatedAt', 'is not', null), eb('graceUntil', '<=', cutoff)]),
        eb.and([eb('rotatedAt', '<=', cutoff), eb('graceUntil', 'is', null)]),
      ]),
    );
}

export async function purgeOrganization(db: Kysely<Schema>, organizationId: string, cutoff: Date): Promise<PurgeCounts> {
  const tokens = await inBatches(async () => {
    const ids = (await deadBefore(db, organizationId, cutoff).orderBy('id').limit(BATCH_SIZE).execute()).map((row) => row.id);
    if (ids.length === 0) return 0;
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('tokenResources').where('tokenId', 'in', ids).execute();
      await trx.deleteFrom('tokenExpiryWarnings').where('tokenId', 'in', ids).execute();
      // The condition again: the ids were read outside this transaction.
      await trx.deleteFrom('tokens').where('id', 'in', deadBefore(trx, organizationId, cutoff).where('id', 'in', ids)).execute();
    });
    return ids.length;
  });
  const auditEvents = await inBatches(async () =>
    deletedCount(
      await db
        .deleteFrom('auditEvents')
        .where('id', 'in', db.selectFrom('auditEvents').select('id').where('organizationId', '=', organizationId).where('at', '<', cutoff).orderBy('at').limit(BATCH_SIZE))
        .executeTakeFirst(),
    ),
  );
  const usageCounts = await purgeUsageCounts(db, organizationId, cutoff);
  const webhookDeliveries = await inBatches(async () =>
    deletedCount(
      await db
        .deleteFrom('webhookDeliveries')
        .where(
          'id',
          'in',
          db.selectFrom('webhookDeliveries').select('id').where('organizationId', '=', organizationId).where('status', 'in', ['delivered', 'failed']).where('createdAt', '<', cutoff).limit(BATCH_SIZE),
        )
        .executeTakeFirst(),
    ),
  );
  const webhookEvents = await inBatches(async () =>
    deletedCount(
      await db
        .deleteFrom('webhookEvents')
        .where(
          'id',
          'in',
          db
            .selectFrom('webhookEvents')
            .select('id')
            .where('organizationId', '=', organizationId)
            .where('createdAt', '<', cutoff)
            // An event still owed to an endpoint stays until its delivery is settled.
            .where(({ not, exists, selectFrom }) => not(exists(selectFrom('webhookDeliveries').select('webhookDeliveries.id').whereRef('webhookDeliveries.eventId', '=', 'webhookEvents.id'))))
            .limit(BATCH_SIZE),
        )
        .executeTakeFirst(),
    ),
  );
  return { tokens, auditEvents, usageCounts, webhookDeliveries, webhookEvents };
}

/**
 * usage_counts has no single-column key to batch by, so it goes an hour of
 * buckets at a time (at most a round's worth of hours), oldest first.
 */
async function purgeUsageCounts(db: Kysely<Schema>, organizationId: string, cutoff: Date): Promise<number> {
  const usage = db.withTables<{ usageCounts: { organizationId: string; bucketStart: Date | string } }>();
  let total = 0;
  for (let round = 0; round < MAX_BATCHES; round++) {
    const oldest = await usage
      .selectFrom('usageCounts')
      .select((eb) => eb.fn.min('bucketStart').as('bucketStart'))
      .where('organizationId', '=', organizationId)
      .where('bucketStart', '<', cutoff)
      .executeTakeFirst();
    if (!oldest?.bucketStart) break;
    const upTo = new Date(Math.min(new Date(oldest.bucketStart).getTime() + HOUR_MS, cutoff.getTime()));
    const bound = upTo.getTime() === cutoff.getTime() ? cutoff : upTo;
    total += deletedCount(await usage.deleteFrom('usageCounts').where('organizationId', '=', organizationId).where('bucketStart', '<', bound).executeTakeFirst());
    if (bound === cutoff) break;
  }
  return total;
}

export class RetentionPurgeJob extends LeasedJob {
  protected readonly name = 'retention-purge';

  constructor(options: LeasedJobOptions) {
    super(options, DEFAULT_INTERVAL_MS);
  }

  /** Answers how many rows it deleted, all kinds together. */
  protected async work(now: Date): Promise<number> {
    const { db } = this.options;
    const organizations = await db.selectFrom('organizations').select(['id', 'retentionDays']).where('retentionDays', 'is not', null).execute();
    let total = 0;
    for (const organization of organizations) {
      const cutoff = new Date(now.getTime() - Number(organization.retentionDays) * DAY_MS);
      const counts = await purgeOrganization(db, organization.id, cutoff);
      const deleted = Object.values(counts).reduce((sum, count) => sum + count, 0);
      if (deleted > 0) this.options.log.info({ organizationId: organization.id, ...counts }, 'purged what is older than the retention period');
      total += deleted;
    }
    return total;
  }
}
