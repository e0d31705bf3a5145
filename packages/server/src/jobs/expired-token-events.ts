// `token.expired`: once per token, when it passes its expiry. The "sent" mark
// is a token_expiry_warnings row with threshold 0, written in the same
// transaction as the outbox event, so the primary key makes it never twice
// (even when a replica whose lease ran out is still finishing its round).
import { enqueueForSubscribers, tokenSummary } from '../storage/webhook-outbox.ts';
import { DAY_MS, LeasedJob, type LeasedJobOptions } from './leased-job.ts';

/** The threshold that marks the `token.expired` event in token_expiry_warnings (the warnings use 60/30/7/1). */
export const EXPIRED_MARK_DAYS = 0;
const DEFAULT_INTERVAL_MS = 5 * 60_000;
const BATCH_SIZE = 500;
/** Tokens that expired longer ago than this (before an upgrade, or while the job was down for a month) get no stale event. */
const LOOKBACK_DAYS = 30;

export class ExpiredTokenEventJob extends LeasedJob {
  protected readonly name = 'token-expired-events';

  constructor(options: LeasedJobOptions) {
    super(options, DEFAULT_INTERVAL_MS);
  }

  /** Answers how many tokens it marked expired (with an event for every subscribed endpoint). */
  protected async work(now: Date): Promise<number> {
    const { db, read } = this.options;
    const candidates = await db
      .selectFrom('tokens')
      .select(['id', 'organizationId', 'expiresAt'])
      .where('revokedAt', 'is', null)
      // A rotated-out token was replaced, not left to expire.
      .where('rotatedAt', 'is', null)
      .where('expiresAt', '<=', now)
      .where('expiresAt', '>', new Date(now.getTime() - LOOKBACK_DAYS * DAY_MS))
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('tokenExpiryWarnings').select('tokenId').whereRef('tokenExpiryWarnings.tokenId', '=', 'tokens.id').where('thresholdDays', '=', EXPIRED_MARK_DAYS))),
      )
      .orderBy('expiresAt')
      .limit(BATCH_SIZE)
      .execute();
    let marked = 0;
    for (const token of candidates) {
      const expiresAt = read(token.expiresAt as Date | string);
      const isNew = await db.transaction().execute(async (trx) => {
        const inserted = await trx
          .insertInto('tokenExpiryWarnings')
          .values({ tokenId: token.id, thresholdDays: EXPIRED_MARK_DAYS, sentAt: now })
          .onConflict((conflict) => conflict.columns(['tokenId', 'thresholdDays']).doNothing())
          .returning('tokenId')
          .execute();
        if (inserted.length === 0) return false;
        await enqueueForSubscribers(trx, { organizationId: token.organizationId, type: 'token.expired', at: now }, async () => ({
          token: await tokenSummary(trx, token.organizationId, token.id, read),
          expiredAt: expiresAt.toISOString(),
        }));
        return true;
      });
      if (isNew) marked++;
    }
    if (marked > 0) this.options.log.info({ expired: marked }, 'recorded token.expired events');
    return marked;
  }
}
