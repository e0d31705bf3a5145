// The webhook event catalog (SPEC §6) and which audit actions report which event.

/** Every event type an endpoint can subscribe to, `ping` aside (the test route sends it to one endpoint). */
export const WEBHOOK_EVENT_TYPES = [
  'token.created',
  'token.rotated',
  'token.revoked',
  'token.expiring',
  'token.expired',
  'token.reuse_detected',
  'token.leaked',
  'member.added',
  'member.removed',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number] | 'ping';

/**
 * Audit actions whose change is reported as a webhook event. The outbox row is
 * written with the audit row, so both commit or roll back with the change.
 */
const EVENT_OF_AUDIT_ACTION: ReadonlyMap<string, WebhookEventType> = new Map([
  ['token.created', 'token.created'],
  ['token.rotated', 'token.rotated'],
  ['token.revoked', 'token.revoked'],
  ['token.reuse_detected', 'token.reuse_detected'],
  ['token.leak_reported', 'token.leaked'],
  ['member.added', 'member.added'],
  ['member.removed', 'member.removed'],
]);

/** The webhook event an audit action reports, or null. */
export function webhookEventOf(auditAction: string): WebhookEventType | null {
  return EVENT_OF_AUDIT_ACTION.get(auditAction) ?? null;
}

/** The delivered body: `{id, type, createdAt, organizationId, data}`. */
export interface WebhookBody {
  id: string;
  type: WebhookEventType;
  createdAt: string;
  organizationId: string;
  data: Record<string, unknown>;
}

