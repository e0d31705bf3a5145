import { afterEach, beforeEach, expect, it } from 'vitest';
import { DEFAULT_TOKEN_POLICY, type NewToken } from '@keyward/core';
import type { Database } from './database.ts';
import { KyselyStore } from './kysely-store.ts';
import { describeEachDialect } from './test-databases.ts';
import { StatementCounter } from '../testing/statement-counter.ts';
import { newTokenFixture } from '../testing/token-fixture.ts';
import { VerificationStore } from './verification-rows.ts';

// Milliseconds on purpose: instants must come back exactly.
const T0 = new Date('2025-03-01T10:00:00.123Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const ORG = 'org_a';
const ALICE = 'usr_alice';

function newToken(id: string): NewToken {
  return newTokenFixture(id, { organizationId: ORG, userId: ALICE, createdAt: T0 });
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
    await verification.writeLastUses(ids.map((tokenId, index) => ({ tokenId, at: at(index), ip: index % 2 === 0 ? `192.0.2.${index}` : null })));
    expect(counter.countOf('UpdateQueryNode')).toBe(1);
    for (const [index, id] of ids.entries()) {
      const stored = await store.findToken(ORG, id);
      expect(stored?.lastUsedAt).toEqual(at(index));
      expect(stored?.lastUsedIp).toBe(index % 2 === 0 ? `192.0.2.${index}` : null);
    }
  });

  it('never moves a last use backwards, and keeps the latest of two uses of one token', async () => {
    await store.insertToken(newToken('tok_1'));
    await store.insertToken(newToken('tok_2'));
    await verification.writeLastUses([{ tokenId: 'tok_1', at: at(10), ip: '192.0.2.10' }]);
    // Another replica wrote a later use already: an older one changes nothing.
    await verification.writeLastUses([
      { tokenId: 'tok_1', at: at(5), ip: '192.0.2.5' },
      { tokenId: 'tok_2', at: at(3), ip: '192.0.2.3' },
      { tokenId: 'tok_2', at: at(7), ip: '192.0.2.7' },
    ]);
    expect(await store.findToken(ORG, 'tok_1')).toMatchObject({ lastUsedAt: at(10), lastUsedIp: '192.0.2.10' });
    expect(await store.findToken(ORG, 'tok_2')).toMatchObject({ lastUsedAt: at(7), lastUsedIp: '192.0.2.7' });
  });

  it('ignores last uses of tokens that no longer exist and writes nothing for none', async () => {
    await store.insertToken(newToken('tok_1'));
    await verification.writeLastUses([
      { tokenId: 'tok_gone', at: at(1), ip: null },
      { tokenId: 'tok_1', at: at(2), ip: '192.0.2.2' },
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
