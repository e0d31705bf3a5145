import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { DEFAULT_TOKEN_POLICY, type NewToken } from '@keyward/core';
import type { Database } from './database.ts';
import { KyselyStore } from './kysely-store.ts';
import { describeEachDialect } from './test-databases.ts';
import { VerificationStore } from './verification-rows.ts';

// Milliseconds on purpose: instants must come back exactly.
const T0 = new Date('2025-03-01T10:00:00.123Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const ORG = 'org_a';
const ALICE = 'usr_alice';

function newToken(id: string): NewToken {
  return {
    id,
    organizationId: ORG,
    kind: 'personal',
    owner: { type: 'user', id: ALICE },
    name: `token ${id}`,
    hint: `kw_pat_…${id.slice(-4)}`,
    digest: `digest_${id}`,
    secretVersion: 'v1',
    scopes: ['tokens:read'],
    permission: 'member',
    resourceIds: [],
    resourcesLimited: false,
    expiresAt: null,
    disabledAt: null,
    disabledBy: null,
    revokedAt: null,
    revokedReason: null,
    allowedIps: [],
    rateLimit: null,
    metadata: {},
    remaining: null,
    refill: null,
    lineageId: id,
    rotatedFrom: null,
    rotatedAt: null,
    graceUntil: null,
    createdAt: T0,
  };
}

/** Counts the update statements sent. */
class UpdateCounter implements KyselyPlugin {
  updates = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (args.node.kind === 'UpdateQueryNode') this.updates++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

describeEachDialect('VerificationStore', (open) => {
  let database: Database;
  let store: KyselyStore;
  let verification: VerificationStore;
  const counter = new UpdateCounter();

  beforeEach(async () => {
    database = await open();
    store = new KyselyStore(database.db);
    verification = new VerificationStore(database.db.withPlugin(counter));
    counter.updates = 0;
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
    expect(counter.updates).toBe(1);
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
    counter.updates = 0;
    await verification.writeLastUses([]);
    expect(counter.updates).toBe(0);
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
