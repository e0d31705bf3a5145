// Unused-token revocation: an organization with `revokeUnusedAfterDays` set
// loses the live tokens nobody used for that long (counted from creation when
// never used). Each is revoked like any other: an audit event by `system`
// with the `token.revoked` webhook in the same transaction, then the bus, so
// every replica's cache drops it.
import { auditEvent, publishSafely, type ServiceDeps } from '@keyward/core';
import { DAY_MS, LeasedJob, type LeasedJobOptions } from './leased-job.ts';

const DEFAULT_INTERVAL_MS = 15 * 60_000;
const BATCH_SIZE = 200;
/** Batches per organization per round: a huge backlog is worked off over several rounds. */
const MAX_BATCHES = 10;

export class UnusedTokenRevocationJob extends LeasedJob {
  protected readonly name = 'unused-token-revocation';
  private readonly deps: ServiceDeps;

  constructor(options: LeasedJobOptions & { deps: ServiceDeps }) {
    super(options, DEFAULT_INTERVAL_MS);
    this.deps = options.deps;
  }

  /** Answers how many tokens it revoked. */
  protected async work(now: Date): Promise<number> {
    const { db } = this.options;
    const organizations = await db.selectFrom('organizations').select(['id', 'revokeUnusedAfterDays']).where('revokeUnusedAfterDays', 'is not', null).execute();
    let revoked = 0;
    for (const organization of organizations) {
      const days = Number(organization.revokeUnusedAfterDays);
      const unusedSince = new Date(now.getTime() - days * DAY_MS);
      for (let batch = 0; batch < MAX_BATCHES; batch++) {
        const candidates = await db
          .selectFrom('tokens')
          .select('id')
          .where('organizationId', '=', organization.id)
          .where('revokedAt', 'is', null)
          // A rotated-out token dies with its grace period; an expired one is not live.
          .where('rotatedAt', 'is', null)
          .where((eb) => eb.or([eb('expiresAt', 'is', null), eb('expiresAt', '>', now)]))
          .where((eb) => eb.or([eb('lastUsedAt', '<=', unusedSince), eb.and([eb('lastUsedAt', 'is', null), eb('createdAt', '<=', unusedSince)])]))
          .orderBy('id')
          .limit(BATCH_SIZE)
          .execute();
        if (candidates.length === 0) break;
        const ids = await this.deps.store.transaction(async (store) => {
          // revokeTokens skips a token revoked meanwhile, so nobody gets a second event.
          const done = await store.revokeTokens(
            candidates.map((candidate) => candidate.id),
            now,
            'unused',
          );
          for (const id of done) {
            await store.insertAuditEvent(
              auditEvent(this.deps, null, { action: 'token.revoked', organizationId: organization.id, target: { type: 'token', id }, details: { reason: 'unused', unusedForDays: days } }),
            );
          }
          return done;
        });
        if (ids.length > 0) await publishSafely(this.deps, { type: 'tokens.changed', organizationId: organization.id, tokenIds: ids });
        revoked += ids.length;
        if (candidates.length < BATCH_SIZE) break;
      }
    }
    if (revoked > 0) this.options.log.info({ revoked }, 'revoked tokens unused for longer than their organization allows');
    return revoked;
  }
}
