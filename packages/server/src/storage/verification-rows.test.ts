import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN_POLICY, type NewToken } from '@keyward/core';
import type { Database } from './database.ts';
import { KyselyStore } from './kysely-store.ts';
import { describeEachDialect, openSqliteTestDatabase } from './test-databases.ts';
import { StatementCounter } from '../testing/statement-counter.ts';
import { newTokenFixture } from '../testing/token-fixture.ts';
import { VerificationStore } from './verification-rows.ts';

// Milliseconds on purpose: instants must come back exactly.
const T0 = new Date('2025-03-01T10:00:00.123Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const ORG = 'org_a';
const ALICE = 'usr_alice';

function newToken(id: string, overrides: Partial<NewToken> = {}): NewToken {
  return newTokenFixture(id, { organizationId: ORG, userId: ALICE, createdAt: T0 }, overrides);
}

describeEachDialect('VerificationStore', (open) => {
  let database: Database;
  let store: KyselyStore;
  let verification: VerificationStore;
  const counter = new StatementCounter();

  beforeEach(async () => {
    database = await open();
    store = new KyselyStore(database.db);
    verification = new VerificationStore(database.db.withPlugin(counter));
    counter.reset();
    await store.insertOrganization({ id: ORG, name: 'ACME', slug: 'acme', tokenPolicy: { ...DEFAULT_TOKEN_POLICY }, disabledAt: null, createdAt: T0 });
    await store.insertUser({ id: ALICE, email: 'alice@example.com', createdAt: T0 }, null);
    await store.insertMembership({ organizationId: ORG, userId: ALICE, role: 'owner', resourceIds: 'all', createdAt: T0 });
  });

  afterEach(async () => {
    await database.close();
  });

  it('writes the last uses of many tokens in one statement, each token getting its own time and address', async () => {
    const ids = Array.from({ length: 30 }, (_, index) => `tok_${String(index).padStart(2, '0')}`);
    for (const id of ids) await store.insertToken(newToken(id));
    await verification.writeLastUses(ids.map((tokenId, index) => ({ tokenId, atMs: at(index).getTime(), ip: index % 2 === 0 ? `192.0.2.${index}` : null })));
    expect(counter.countOf('UpdateQueryNode')).toBe(1);
    for (const [index, id] of ids.entries()) {
      const stored = await store.findToken(ORG, id);
      expect(stored?.lastUsedAt).toEqual(at(index));
      expect(stored?.lastUsedIp).toBe(index % 2 === 0 ? `192.0.2.${index}` : null);
    }
  });

  it('writes more last uses than one statement takes (1,000 each), every one of them', async () => {
    const ids = Array.from({ length: 1_001 }, (_, index) => `tok_${String(index).padStart(4, '0')}`);
    for (const id of ids) await store.insertToken(newToken(id));
    counter.reset();
    await verification.writeLastUses(ids.map((tokenId, index) => ({ tokenId, atMs: at(index).getTime(), ip: `192.0.2.${index % 250}` })));
    expect(counter.countOf('UpdateQueryNode')).toBe(2);
    for (const index of [0, 999, 1_000]) {
      expect(await store.findToken(ORG, ids[index]!)).toMatchObject({ lastUsedAt: at(index), lastUsedIp: `192.0.2.${index % 250}` });
    }
  });

  it('never moves a last use backwards, and keeps the latest of two uses of one token', async () => {
    await store.insertToken(newToken('tok_1'));
    await store.insertToken(newToken('tok_2'));
    await verification.writeLastUses([{ tokenId: 'tok_1', atMs: at(10).getTime(), ip: '192.0.2.10' }]);
    // Another replica wrote a later use already: an older one changes nothing.
    await verification.writeLastUses([
      { tokenId: 'tok_1', atMs: at(5).getTime(), ip: '192.0.2.5' },
      { tokenId: 'tok_2', atMs: at(3).getTime(), ip: '192.0.2.3' },
      { tokenId: 'tok_2', atMs: at(7).getTime(), ip: '192.0.2.7' },
    ]);
    expect(await store.findToken(ORG, 'tok_1')).toMatchObject({ lastUsedAt: at(10), lastUsedIp: '192.0.2.10' });
    expect(await store.findToken(ORG, 'tok_2')).toMatchObject({ lastUsedAt: at(7), lastUsedIp: '192.0.2.7' });
  });

  it('ignores last uses of tokens that no longer exist and writes nothing for none', async () => {
    await store.insertToken(newToken('tok_1'));
    await verification.writeLastUses([
      { tokenId: 'tok_gone', atMs: at(1).getTime(), ip: null },
      { tokenId: 'tok_1', atMs: at(2).getTime(), ip: '192.0.2.2' },
    ]);
    expect(await store.findToken(ORG, 'tok_1')).toMatchObject({ lastUsedAt: at(2), lastUsedIp: '192.0.2.2' });
    counter.reset();
    await verification.writeLastUses([]);
    expect(counter.countOf('UpdateQueryNode')).toBe(0);
  });

  it('finds a token by any of its candidate digests, with its owner’s current access, and nothing for an unknown digest', async () => {
    await store.insertToken(newToken('tok_1'));
    const found = await verification.findTokenForVerification(['digest_unknown', 'digest_tok_1']);
    expect(found?.token.id).toBe('tok_1');
    expect(found?.owner).toMatchObject({ role: 'owner', resourceIds: 'all', email: 'alice@example.com' });
    expect(await verification.findTokenForVerification(['digest_unknown'])).toBeNull();
    expect(await verification.findTokenForVerification([])).toBeNull();
  });
});

describe('VerificationStore lookups through SQLite’s read connection', () => {
  let database: Database;
  let store: KyselyStore;

  beforeEach(async () => {
    database = await openSqliteTestDatabase();
    store = new KyselyStore(database.db);
    await store.insertOrganization({ id: ORG, name: 'ACME', slug: 'acme', tokenPolicy: { ...DEFAULT_TOKEN_POLICY }, disabledAt: null, createdAt: T0 });
    await store.insertUser({ id: ALICE, email: 'alice@example.com', createdAt: T0 }, null);
    await store.insertUser({ id: 'usr_bob', email: 'bob@example.com', createdAt: T0 }, null);
    await store.insertMembership({ organizationId: ORG, userId: ALICE, role: 'owner', resourceIds: 'all', createdAt: T0 });
    for (const id of ['res_1', 'res_2', 'res_3']) await store.insertResource({ id, organizationId: ORG, type: 'repository', name: `repo ${id}`, createdAt: T0 });
    await store.insertMembership({ organizationId: ORG, userId: 'usr_bob', role: 'member', resourceIds: ['res_2', 'res_1'], createdAt: T0 });
    await store.insertClient({ id: 'cli_1', organizationId: ORG, name: 'gateway', description: null, createdAt: T0, deletedAt: at(5), rateLimit: { limit: 10, windowSeconds: 60 } });
  });

  afterEach(async () => {
    await database.close();
  });

  it('is what SQLite databases open with, and answers exactly what the same lookup through Kysely answers', async () => {
    expect(database.reader).toBeTruthy();
    const tokens: NewToken[] = [
      newToken('tok_plain'),
      newToken('tok_full', {
        expiresAt: at(60), revokedAt: at(1), revokedReason: 'manual', disabledAt: at(2), disabledBy: { type: 'user', id: ALICE, permission: 'owner' }, allowedIps: ['10.0.0.0/8'],
        rateLimit: { limit: 5, windowSeconds: 60 }, metadata: { team: 'a', n: 1 }, remaining: 7, refill: { amount: 10, interval: 'daily' },
        resourceIds: ['res_3', 'res_1'], resourcesLimited: true, scopes: ['tokens:read', 'tokens:write'],
      }),
      newTokenFixture('tok_bob', { organizationId: ORG, userId: 'usr_bob', createdAt: T0 }),
      newTokenFixture('tok_client', { organizationId: ORG, userId: ALICE, createdAt: T0 }, { kind: 'client', owner: { type: 'client', id: 'cli_1' } }),
    ];
    for (const token of tokens) await store.insertToken(token);
    const throughReader = new VerificationStore(database.db, database.reader ?? null);
    const throughKysely = new VerificationStore(database.db);
    for (const token of tokens) {
      const read = await throughReader.findTokenForVerification([token.digest]);
      expect(read?.token.id).toBe(token.id);
      expect(read).toEqual(await throughKysely.findTokenForVerification([token.digest]));
    }
    expect(await throughReader.findTokenForVerification(['digest_unknown'])).toBeNull();
  });

  it('answers while a management transaction is open, with what was committed, and sees the change once it commits', async () => {
    await store.insertToken(newToken('tok_1'));
    const verification = new VerificationStore(database.db, database.reader ?? null);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let revokedInside!: () => void;
    const revoking = new Promise<void>((resolve) => (revokedInside = resolve));
    const transaction = database.db.transaction().execute(async (trx) => {
      await trx.updateTable('tokens').set({ revokedAt: at(1), revokedReason: 'manual' }).where('id', '=', 'tok_1').execute();
      revokedInside();
      await held;
    });
    await revoking;
    // Kysely's own connection is busy with the transaction; the reader neither waits for it nor sees its write.
    const during = await verification.findTokenForVerification(['digest_tok_1']);
    expect(during?.token.revokedAt).toBeNull();
    release();
    await transaction;
    expect((await verification.findTokenForVerification(['digest_tok_1']))?.token.revokedAt).toEqual(at(1));
  });
});
