// users and sessions rows ↔ records.
import type { Insertable, Selectable } from 'kysely';
import type { Session, User } from '@keyward/core';
import type { TimestampReader } from './row-values.ts';
import type { SessionsTable, UsersTable } from './schema.ts';

export function userFromRow(row: Pick<Selectable<UsersTable>, 'id' | 'email' | 'createdAt'>, read: TimestampReader): User {
  return { id: row.id, email: row.email, createdAt: read(row.createdAt) };
}

export function userToRow(user: User, passwordHash: string | null): Insertable<UsersTable> {
  return { id: user.id, email: user.email, passwordHash, inviteDigest: null, inviteExpiresAt: null, createdAt: user.createdAt };
}

export function sessionFromRow(row: Selectable<SessionsTable>, read: TimestampReader): Session {
  return { id: row.id, userId: row.userId, csrfDigest: row.csrfDigest, createdAt: read(row.createdAt), expiresAt: read(row.expiresAt) };
}

export function sessionToRow(session: Session): Insertable<SessionsTable> {
  return { id: session.id, userId: session.userId, csrfDigest: session.csrfDigest, createdAt: session.createdAt, expiresAt: session.expiresAt };
}
