import { mkdtemp, rm } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Kysely, sql, type Generated } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteDialect, openSqliteFile, toSqliteParameter } from './sqlite-dialect.ts';

interface Notes {
  notes: { id: Generated<number>; body: string | null; pinned: number; at: string | null };
}

describe('the node:sqlite dialect', () => {
  let dir: string;
  let file: string;
  let db: Kysely<Notes>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyward-sqlite-'));
    file = join(dir, 'test.db');
    db = new Kysely<Notes>({ dialect: createSqliteDialect(file) });
    await sql`create table notes (id integer primary key, body text, pinned integer not null, at text)`.execute(db);
  });

  afterEach(async () => {
    await db.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('opens in WAL mode with foreign keys, a busy timeout and synchronous=FULL', async () => {
    const pragma = async (name: string) => Object.values((await sql.raw<Record<string, unknown>>(`pragma ${name}`).execute(db)).rows[0] ?? {})[0];
    expect(await pragma('journal_mode')).toBe('wal');
    expect(await pragma('foreign_keys')).toBe(1);
    expect(await pragma('busy_timeout')).toBe(5000);
    // 2 = FULL: an acknowledged commit survives a power cut.
    expect(await pragma('synchronous')).toBe(2);
  });

  it('answers the rows of insert … returning and the changes of a plain write', async () => {
    const inserted = await db.insertInto('notes').values({ body: 'first', pinned: 0 }).returning(['id', 'body']).execute();
    expect(inserted).toEqual([{ id: 1, body: 'first' }]);
    const result = await db.updateTable('notes').set({ pinned: 1 }).where('id', '=', 1).executeTakeFirst();
    expect(result.numUpdatedRows).toBe(1n);
    const { insertId } = await db.insertInto('notes').values({ body: 'second', pinned: 0 }).executeTakeFirst();
    expect(insertId).toBe(2n);
  });

  it('binds Dates as ISO strings, booleans as 0/1 and undefined as null', async () => {
    const instant = new Date('2025-01-02T03:04:05.678Z');
    await sql`insert into notes (body, pinned, at) values (${undefined}, ${true}, ${instant})`.execute(db);
    expect(await db.selectFrom('notes').selectAll().execute()).toEqual([{ id: 1, body: null, pinned: 1, at: '2025-01-02T03:04:05.678Z' }]);
    expect(toSqliteParameter(false)).toBe(0);
    expect(toSqliteParameter(10n)).toBe(10n);
    expect(() => toSqliteParameter({ an: 'object' })).toThrow(TypeError);
  });

  it('streams the rows of a select', async () => {
    await db.insertInto('notes').values([{ body: 'a', pinned: 0 }, { body: 'b', pinned: 0 }]).execute();
    const bodies: Array<string | null> = [];
    for await (const row of db.selectFrom('notes').select('body').orderBy('id').stream()) bodies.push(row.body);
    expect(bodies).toEqual(['a', 'b']);
  });

  it('takes the write lock when a transaction begins, so another process waits instead of failing mid-way', async () => {
    const other = new DatabaseSync(file, { timeout: 0 });
    try {
      await db.transaction().execute(async (trx) => {
        await trx.selectFrom('notes').selectAll().execute();
        expect(() => other.exec('begin immediate')).toThrow(/locked|busy/i);
      });
      other.exec('begin immediate');
      other.exec('rollback');
    } finally {
      other.close();
    }
  });

  it('writes limit and offset counts into the SQL instead of binding them, and binds anything else', async () => {
    await db.insertInto('notes').values([{ body: 'a', pinned: 0 }, { body: 'b', pinned: 0 }, { body: 'c', pinned: 0 }]).execute();
    const page = db.selectFrom('notes').select('body').where('pinned', '=', 0).orderBy('id').limit(1).offset(1);
    const compiled = page.compile();
    // A bound LIMIT expires SQLite's prepared statement on every execution; an inline one is prepared once.
    expect(compiled.sql).toMatch(/ limit 1 offset 1$/);
    expect(compiled.parameters).toEqual([0]);
    expect(await page.execute()).toEqual([{ body: 'b' }]);
    const computed = db.selectFrom('notes').select('body').limit(sql<number>`1 + 1`);
    expect(computed.compile().sql).toMatch(/ limit 1 \+ 1$/);
    expect(await computed.execute()).toHaveLength(2);
  });
});

describe('opening an SQLite file another process is creating', () => {
  it('waits for the other process’s lock instead of failing with “database is locked” while switching to WAL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyward-sqlite-open-'));
    const file = join(dir, 'shared.db');
    // A second thread stands for a second `keyward serve` that got to the new
    // file first: it holds the exclusive lock for a moment, as its migration does.
    const holder = new Worker(
      `const { DatabaseSync } = require('node:sqlite');
       const { parentPort, workerData } = require('node:worker_threads');
       const database = new DatabaseSync(workerData);
       database.exec('begin exclusive');
       database.exec('create table claimed (id integer primary key)');
       parentPort.postMessage('locked');
       setTimeout(() => { database.exec('commit'); database.close(); parentPort.postMessage('released'); }, 300);`,
      { eval: true, workerData: file },
    );
    try {
      await once(holder, 'message');
      const opened = openSqliteFile(file);
      try {
        expect(opened.prepare('pragma journal_mode').get()).toEqual({ journal_mode: 'wal' });
        expect(opened.prepare("select name from sqlite_master where name = 'claimed'").get()).toEqual({ name: 'claimed' });
      } finally {
        opened.close();
      }
    } finally {
      await holder.terminate();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
