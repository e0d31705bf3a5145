import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

describeEachDialect('token lifecycle routes', (open) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp(open);
  });
  afterEach(async () => {
    await t.close();
  });

  describe('POST /api/v1/tokens', () => {
    it('creates a token with the password flow and returns the plaintext once', async () => {
      const created = await passwordToken(t, { name: 'ci deploy', scopes: ['scans:read'] });
      expect(created.token).toMatch(/^kw_pat_[0-9A-Za-z]{49}$/);
      expect(created.body).toMatchObject({ name: 'ci deploy', kind: 'personal', status: 'active', scopes: ['scans:read'], permission: 'owner' });
      expect(created.body.hint).toBe(`kw_pat_…${created.token.slice(-4)}`);

      const listed = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(created.token) });
      expect(listed.statusCode).toBe(403);
      expect(listed.headers['www-authenticate']).toContain('insufficient_scope');
    });

    it('lists the token without its secret once created with management scopes', async () => {
      const token = await ownerToken(t);
      const listed = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token) });
      expect(listed.statusCode).toBe(200);
      const body = json(listed);
      expect(body.items).toHaveLength(1);
      expect(body.items[0]).not.toHaveProperty('token');
      expect(JSON.stringify(body)).not.toContain(token);
      expect(body.nextCursor).toBeNull();
    });
  });
});
