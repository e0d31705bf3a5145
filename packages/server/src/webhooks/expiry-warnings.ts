// The expiry-warning job: `token.expiring` at 60, 30, 7 and 1 days before a
// live token expires. Each threshold is recorded per token in the same
// transaction as its outbox event, so no warning is sent twice; a job lease
// lets one replica at a time run it, and another take over if that one dies.
import { LeasedJob, type LeasedJobOptions } from '../jobs/leased-job.ts';
import { enqueueForSubscribers, tokenSummary } from '../storage/webhook-outbox.ts';

/** Days before expiry at which a warning is due, widest first. */
export const EXPIRY_WARNING_DAYS = [60, 30, 7, 1] as const;
const DAY_MS = 86_400_000;
const DEFAULT_INTERVAL_MS = 5 * 60_000;
const BATCH_SIZE = 500;

/**
 * The warning due now for a token, or null: the tightest threshold that has
 * been reached and not yet sent, among those the token lived through (a token
 * made to last 5 days gets the 1-day warning, not a 7-day one at birth).
 * `covers` are all the thresholds this warning settles, so a job that was
 * down for weeks sends one warning, not a burst of stale ones.
 */
export function dueWarning(createdAt: Date, expiresAt: Date, now: Date, sent: ReadonlySet<number>): { thresholdDays: number; covers: number[] } | null {
  const reached = EXPIRY_WARNING_DAYS.filter((days) => {
    const point = expiresAt.getTime() - days * DAY_MS;
    return createdAt.getTime() < point && now.getTime() >= point;
  });
  if (reached.length === 0) return null;
  const tightest = Math.min(...reached);
  if (sent.has(tightest)) return null;
  return { thresholdDays: tightest, covers: reached.filter((days) => !sent.has(days)) };
}

export type ExpiryWarningJobOptions = LeasedJobOptions;

export class ExpiryWarningJob extends LeasedJob {
  protected readonly name = 'token-expiry-warnings';

  constructor(options: ExpiryWarningJobOptions) {
    super(options, DEFAULT_INTERVAL_MS);
  }

  /** Answers how many warnings it enqueued. */
  protected async work(now: Date): Promise<number> {
    const { db, read } = this.options;
    const horizon = new Date(now.getTime() + EXPIRY_WARNING_DAYS[0] * DAY_MS);
    const candidates = await db
      .selectFrom('tokens')
      .select(['id', 'organizationId', 'createdAt', 'expiresAt'])
      .where('revokedAt', 'is', null)
      .where('rotatedAt', 'is', null)
      .where('disabledAt', 'is', null)
      .where('expiresAt', '>', now)
      .where('expiresAt', '<=', horizon)
      .orderBy('expiresAt')
      .limit(BATCH_SIZE)
      .execute();
    if (candidates.length === 0) return 0;
    const sentRows = await db
      .selectFrom('tokenExpiryWarnings')
      .select(['tokenId', 'thresholdDays'])
      .where(
        'tokenId',
        'in',
        candidates.map((candidate) => candidate.id),
      )
      .execute();
    const sent = new Map<string, Set<number>>();
    for (const row of sentRows) sent.set(row.tokenId, (sent.get(row.tokenId) ?? new Set()).add(Number(row.thresholdDays)));
    let warned = 0;
    for (const token of candidates) {
      const expiresAt = read(token.expiresAt as Date | string);
      const due = dueWarning(read(token.createdAt), expiresAt, now, sent.get(token.id) ?? new Set());
      if (!due) continue;
      const isNew = await db.transaction().execute(async (trx) => {
        const inserted = await trx
          .insertInto('tokenExpiryWarnings')
          .values(due.covers.map((thresholdDays) => ({ tokenId: token.id, thresholdDays, sentAt: now })))
          .onConflict((conflict) => conflict.columns(['tokenId', 'thresholdDays']).doNothing())
          .returning('thresholdDays')
          .execute();
        // Already recorded by an earlier round (or a replica whose lease ran out mid-round): never twice.
        if (!inserted.some((row) => Number(row.thresholdDays) === due.thresholdDays)) return false;
        await enqueueForSubscribers(trx, { organizationId: token.organizationId, type: 'token.expiring', at: now }, async () => ({
          token: await tokenSummary(trx, token.organizationId, token.id, read),
          thresholdDays: due.thresholdDays,
          expiresAt: expiresAt.toISOString(),
        }));
        return true;
      });
      if (isNew) warned++;
    }
    if (warned > 0) this.options.log.info({ warned }, 'enqueued token.expiring warnings');
    return warned;
  }
}
