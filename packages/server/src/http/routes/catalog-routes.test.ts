import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { bearer, createTestApp, json, passwordToken, type TestApp } from '../../testing/test-app.ts';

describeEachDialect('GET /api/v1/scopes', (open) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(open);
  });
  afterAll(async () => {
    await t.close();
  });

  it('lists every catalog scope with its minimum role, and the presets', async () => {
    const { token } = await passwordToken(t, { scopes: ['scans:read'] });
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/scopes', headers: bearer(token) });
    expect(response.statusCode).toBe(200);
    const body = json(response);
    expect(body.scopes).toContainEqual(expect.objectContaining({ name: 'tokens:manage', minRole: 'admin' }));
    expect(body.scopes).toContainEqual(expect.objectContaining({ name: 'scans:read', minRole: 'viewer' }));
    expect(body.presets.map((preset: { name: string }) => preset.name)).toEqual(['Read only', 'Read & write', 'Full access']);
    expect(body.defaultPreset).toBe('Read only');
  });

  it('answers 401 without credentials', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/scopes' });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="keyward"');
  });
});
