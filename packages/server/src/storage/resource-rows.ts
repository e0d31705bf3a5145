// resources and api_clients rows ↔ records.
import type { Insertable, Selectable } from 'kysely';
import type { ApiClient, Resource } from '@keyward/core';
import type { RateLimitSetting } from '@keyward/core';
import { fromOptionalJson, readOptionalTimestamp, toJson, type TimestampReader } from './row-values.ts';
import type { ApiClientsTable, ResourcesTable } from './schema.ts';

export function resourceFromRow(row: Selectable<ResourcesTable>, read: TimestampReader): Resource {
  return { id: row.id, organizationId: row.organizationId, type: row.type, name: row.name, createdAt: read(row.createdAt) };
}

export function resourceToRow(resource: Resource): Insertable<ResourcesTable> {
  return { id: resource.id, organizationId: resource.organizationId, type: resource.type, name: resource.name, createdAt: resource.createdAt };
}

export function clientFromRow(row: Selectable<ApiClientsTable>, read: TimestampReader): ApiClient {
  return {
    id: row.id,
    organizationId: row.organizationId,
    name: row.name,
    description: row.description,
    createdAt: read(row.createdAt),
    deletedAt: readOptionalTimestamp(read, row.deletedAt),
    rateLimit: fromOptionalJson<RateLimitSetting>(row.rateLimit),
  };
}

export function clientToRow(client: ApiClient): Insertable<ApiClientsTable> {
  return {
    id: client.id,
    organizationId: client.organizationId,
    name: client.name,
    description: client.description,
    createdAt: client.createdAt,
    deletedAt: client.deletedAt,
    rateLimit: client.rateLimit === null ? null : toJson(client.rateLimit),
  };
}
