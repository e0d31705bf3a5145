// webhook_endpoints and webhook_deliveries rows: what the webhook routes and
// the delivery worker read and write. Every endpoint query names the
// organization, so another organization's ids answer like missing ones.
import type { PageAfter } from '@keyward/core';
import type { Kysely, Selectable } from 'kysely';
import { isAfter } from './kysely-store.ts';
import { fromFlag, fromJson, readOptionalTimestamp, toFlag, toJson, type TimestampReader } from './row-values.ts';
import type { Schema, WebhookDeliveriesTable, WebhookEndpointsTable } from './schema.ts';

export interface WebhookEndpoint {
  id: string;
  organizationId: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** The delivery log's error for deliveries given up while their endpoint was disabled. */
export const HELD_TOO_LONG = 'not sent: the endpoint was disabled for the whole retry window';

export interface WebhookDelivery {
  id: string;
  eventId: string;
  eventType: string;
  endpointId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  lastDurationMs: number | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

/** A claimed delivery with what sending it needs. */
export interface ClaimedDelivery {
  id: string;
  attempts: number;
  createdAt: Date;
  endpoint: { id: string; url: string; secretCiphertext: string };
  event: { id: string; type: string; organizationId: string; payload: string; createdAt: Date };
}

export interface AttemptRecord {
  at: Date;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  /** 'delivered', 'failed' (gave up), or the next attempt's time. */
  outcome: { status: 'delivered' } | { status: 'failed' } | { status: 'pending'; nextAttemptAt: Date };
}

function endpointFromRow(row: Selectable<WebhookEndpointsTable>, read: TimestampReader): WebhookEndpoint {
  return {
    id: row.id,
    organizationId: row.organizationId,
    url: row.url,
    description: row.description,
    events: fromJson<string[]>(row.events),
    enabled: fromFlag(row.enabled),
    createdAt: read(row.createdAt),
    updatedAt: read(row.updatedAt),
  };
}

function deliveryFromRow(row: Selectable<WebhookDeliveriesTable> & { eventType: string }, read: TimestampReader): WebhookDelivery {
  return {
    id: row.id,
    eventId: row.eventId,
    eventType: row.eventType,
    endpointId: row.endpointId,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: read(row.nextAttemptAt),
    lastAttemptAt: readOptionalTimestamp(read, row.lastAttemptAt),
    lastStatusCode: row.lastStatusCode === null ? null : Number(row.lastStatusCode),
    lastError: row.lastError,
    lastDurationMs: row.lastDurationMs === null ? null : Number(row.lastDurationMs),
    deliveredAt: readOptionalTimestamp(read, row.deliveredAt),
    createdAt: read(row.createdAt),
  };
}

export class WebhookStore {
  readonly db: Kysely<Schema>;
  readonly read: TimestampReader;

  constructor(db: Kysely<Schema>, read: TimestampReader) {
    this.db = db;
    this.read = read;
  }

  // ── endpoints ──────────────────────────────────────────────────────────

  async insertEndpoint(endpoint: WebhookEndpoint, secretCiphertext: string): Promise<void> {
    const { events, enabled, ...rest } = endpoint;
    await this.db.insertInto('webhookEndpoints').values({ ...rest, events: toJson(events), enabled: toFlag(enabled), secretCiphertext }).execute();
  }

  async findEndpoint(organizationId: string, id: string): Promise<WebhookEndpoint | null> {
    const row = await this.db.selectFrom('webhookEndpoints').selectAll().where('organizationId', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return row ? endpointFromRow(row, this.read) : null;
  }

  /** Newest first. */
  async listEndpoints(organizationId: string, page: { after?: PageAfter | undefined; limit: number }): Promise<WebhookEndpoint[]> {
    const rows = await this.db
      .selectFrom('webhookEndpoints')
      .selectAll()
      .where('organizationId', '=', organizationId)
      .$if(page.after !== undefined, (qb) => qb.where(isAfter(page.after as PageAfter, 'createdAt', 'id')))
      .orderBy('createdAt', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit)
      .execute();
    return rows.map((row) => endpointFromRow(row, this.read));
  }

  async updateEndpoint(organizationId: string, id: string, changes: { url?: string; description?: string | null; events?: string[]; enabled?: boolean; updatedAt: Date }): Promise<void> {
    const { events, enabled, ...rest } = changes;
    await this.db
      .updateTable('webhookEndpoints')
      .set({ ...rest, ...(events !== undefined ? { events: toJson(events) } : {}), ...(enabled !== undefined ? { enabled: toFlag(enabled) } : {}) })
      .where('organizationId', '=', organizationId)
      .where('id', '=', id)
      .execute();
  }

  /** Deletes the endpoint and its delivery log; the events stay (other endpoints may have them). */
  async deleteEndpoint(organizationId: string, id: string): Promise<void> {
    await this.db.deleteFrom('webhookDeliveries').where('organizationId', '=', organizationId).where('endpointId', '=', id).execute();
    await this.db.deleteFrom('webhookEndpoints').where('organizationId', '=', organizationId).where('id', '=', id).execute();
  }

  /** Every endpoint's sealed secret, for resealing under a new keyring version. */
  async listSealedSecrets(): Promise<Array<{ id: string; secretCiphertext: string }>> {
    return this.db.selectFrom('webhookEndpoints').select(['id', 'secretCiphertext']).execute();
  }

  /** Compare-and-set, so two replicas resealing at once cannot overwrite a newer seal with an older one. */
  async replaceSealedSecret(id: string, previous: string, next: string): Promise<boolean> {
    const result = await this.db.updateTable('webhookEndpoints').set({ secretCiphertext: next }).where('id', '=', id).where('secretCiphertext', '=', previous).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  // ── deliveries ─────────────────────────────────────────────────────────

  /** One endpoint's delivery log, newest first. */
  async listDeliveries(organizationId: string, endpointId: string, page: { after?: PageAfter | undefined; limit: number }): Promise<WebhookDelivery[]> {
    const rows = await this.db
      .selectFrom('webhookDeliveries')
      .innerJoin('webhookEvents', 'webhookEvents.id', 'webhookDeliveries.eventId')
      .selectAll('webhookDeliveries')
      .select('webhookEvents.type as eventType')
      .where('webhookDeliveries.organizationId', '=', organizationId)
      .where('webhookDeliveries.endpointId', '=', endpointId)
      .$if(page.after !== undefined, (qb) => qb.where(isAfter(page.after as PageAfter, 'webhookDeliveries.createdAt', 'webhookDeliveries.id')))
      .orderBy('webhookDeliveries.createdAt', 'desc')
      .orderBy('webhookDeliveries.id', 'desc')
      .limit(page.limit)
      .execute();
    return rows.map((row) => deliveryFromRow(row, this.read));
  }

  /**
   * Claims up to `limit` due deliveries for `owner` until `leaseUntil`, in one
   * statement. Two workers (or replicas) never claim the same row: the
   * outer conditions are checked again on the row being updated, so on
   * PostgreSQL the second update, which waited for the first's row lock,
   * finds the lease taken and skips the row. A crashed worker's lease runs
   * out and the row becomes due again: delivery is at least once.
   */
  async claimDue(owner: string, now: Date, leaseUntil: Date, limit: number): Promise<ClaimedDelivery[]> {
    const due = this.db
      .selectFrom('webhookDeliveries')
      .innerJoin('webhookEndpoints', 'webhookEndpoints.id', 'webhookDeliveries.endpointId')
      .select('webhookDeliveries.id')
      .where('webhookDeliveries.status', '=', 'pending')
      .where('webhookDeliveries.nextAttemptAt', '<=', now)
      .where((eb) => eb.or([eb('webhookDeliveries.leaseUntil', 'is', null), eb('webhookDeliveries.leaseUntil', '<=', now)]))
      // A disabled endpoint's deliveries wait; enabling it again resumes them.
      .where('webhookEndpoints.enabled', '=', 1)
      .orderBy('webhookDeliveries.nextAttemptAt')
      .limit(limit);
    const claimed = await this.db
      .updateTable('webhookDeliveries')
      .set({ leaseOwner: owner, leaseUntil })
      .where('id', 'in', due)
      .where('status', '=', 'pending')
      .where((eb) => eb.or([eb('leaseUntil', 'is', null), eb('leaseUntil', '<=', now)]))
      .returning('id')
      .execute();
    if (claimed.length === 0) return [];
    const rows = await this.db
      .selectFrom('webhookDeliveries')
      .innerJoin('webhookEndpoints', 'webhookEndpoints.id', 'webhookDeliveries.endpointId')
      .innerJoin('webhookEvents', 'webhookEvents.id', 'webhookDeliveries.eventId')
      .select([
        'webhookDeliveries.id',
        'webhookDeliveries.attempts',
        'webhookDeliveries.createdAt',
        'webhookEndpoints.id as endpointId',
        'webhookEndpoints.url',
        'webhookEndpoints.secretCiphertext',
        'webhookEvents.id as eventId',
        'webhookEvents.type',
        'webhookEvents.organizationId',
        'webhookEvents.payload',
        'webhookEvents.createdAt as eventCreatedAt',
      ])
      .where(
        'webhookDeliveries.id',
        'in',
        claimed.map((row) => row.id),
      )
      .where('webhookDeliveries.leaseOwner', '=', owner)
      .orderBy('webhookDeliveries.nextAttemptAt')
      .execute();
    return rows.map((row) => ({
      id: row.id,
      attempts: Number(row.attempts),
      createdAt: this.read(row.createdAt),
      endpoint: { id: row.endpointId, url: row.url, secretCiphertext: row.secretCiphertext },
      event: { id: row.eventId, type: row.type, organizationId: row.organizationId, payload: row.payload, createdAt: this.read(row.eventCreatedAt) },
    }));
  }

  /** Records an attempt and releases the claim; false when the claim was lost (its lease ran out and another worker took it). */
  async recordAttempt(owner: string, deliveryId: string, attempt: AttemptRecord): Promise<boolean> {
    const { outcome } = attempt;
    const result = await this.db
      .updateTable('webhookDeliveries')
      .set((eb) => ({
        attempts: eb('attempts', '+', 1),
        status: outcome.status,
        nextAttemptAt: outcome.status === 'pending' ? outcome.nextAttemptAt : attempt.at,
        deliveredAt: outcome.status === 'delivered' ? attempt.at : null,
        lastAttemptAt: attempt.at,
        lastStatusCode: attempt.statusCode,
        // The log is for people; a receiver's long error text is cut.
        lastError: attempt.error === null ? null : attempt.error.slice(0, 500),
        lastDurationMs: attempt.durationMs,
        leaseOwner: null,
        leaseUntil: null,
      }))
      .where('id', '=', deliveryId)
      .where('leaseOwner', '=', owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Fails, unsent, the deliveries a disabled endpoint has held since before
   * `enqueuedBefore` (the retry window's start): an endpoint disabled that long
   * is not owed a backlog of stale events when it comes back, and settled rows
   * leave with the rest of the log at the retention purge. Answers how many.
   */
  async giveUpHeld(enqueuedBefore: Date): Promise<number> {
    const disabled = this.db.selectFrom('webhookEndpoints').select('id').where('enabled', '=', 0);
    const result = await this.db
      .updateTable('webhookDeliveries')
      .set({ status: 'failed', lastError: HELD_TOO_LONG, leaseOwner: null, leaseUntil: null })
      .where('status', '=', 'pending')
      .where('createdAt', '<', enqueuedBefore)
      .where('endpointId', 'in', disabled)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Gives claimed rows back without counting an attempt (a worker stopping before it sent them). */
  async releaseClaims(owner: string, deliveryIds: readonly string[]): Promise<void> {
    if (deliveryIds.length === 0) return;
    await this.db.updateTable('webhookDeliveries').set({ leaseOwner: null, leaseUntil: null }).where('id', 'in', [...deliveryIds]).where('leaseOwner', '=', owner).execute();
  }
}

