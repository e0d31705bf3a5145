// Leases for periodic jobs: one replica runs a job at a time. A lease is a row
// with an owner and an expiry; a replica that dies holding one loses it when
// it runs out, and another takes the job over.
import type { Kysely } from 'kysely';
import type { Schema } from './schema.ts';

/**
 * Takes (or renews) the lease on `name` for `owner` until `until`; true when
 * this owner holds it now. Works the same on both dialects: the conditional
 * update is atomic, so of two replicas asking at once only one gets the row.
 */
export async function acquireJobLease(db: Kysely<Schema>, name: string, owner: string, now: Date, until: Date): Promise<boolean> {
  await db
    .insertInto('jobLeases')
    .values({ name, owner, leaseUntil: now })
    .onConflict((conflict) => conflict.column('name').doNothing())
    .execute();
  const result = await db
    .updateTable('jobLeases')
    .set({ owner, leaseUntil: until })
    .where('name', '=', name)
    .where((eb) => eb.or([eb('owner', '=', owner), eb('leaseUntil', '<=', now)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Gives the lease up early (a replica shutting down), so another can run the job at once. */
export async function releaseJobLease(db: Kysely<Schema>, name: string, owner: string, now: Date): Promise<void> {
  await db.updateTable('jobLeases').set({ leaseUntil: now }).where('name', '=', name).where('owner', '=', owner).execute();
}
