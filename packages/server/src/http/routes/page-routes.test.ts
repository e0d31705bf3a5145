import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { createTestApp, type TestApp } from '../../testing/test-app.ts';

describeEachDialect('first-run pages', (open) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(open);
  });
  afterAll(async () => {
    await t.close();
  });

  describe('GET /setup and GET /invite', () => {
    it('serve labelled forms that load their script from the server itself', async () => {
      for (const path of ['/setup', '/invite']) {
        const response = await t.app.inject({ method: 'GET', url: path });
        expect(response.statusCode).toBe(200);
        expect(response.headers['content-type']).toContain('text/html');
        expect(response.headers['cache-control']).toBe('no-store');
        expect(response.body).toContain('<label for="password">');
        expect(response.body).toContain('<script src="/assets/pages.js" defer></script>');
        expect(response.body).not.toMatch(/<script>(?!<)/);
      }
    });

    it('serve the script that posts to the setup and invite endpoints', async () => {
      const script = await t.app.inject({ method: 'GET', url: '/assets/pages.js' });
      expect(script.statusCode).toBe(200);
      expect(script.headers['content-type']).toContain('text/javascript');
      expect(script.body).toContain('location.hash');
      const setup = await t.app.inject({ method: 'GET', url: '/setup' });
      expect(setup.body).toContain('data-endpoint="/api/v1/setup"');
      const invite = await t.app.inject({ method: 'GET', url: '/invite' });
      expect(invite.body).toContain('data-endpoint="/api/v1/auth/accept-invite"');
    });

    it('offers an invited person who already has an account a way to accept signed in, without setting a password', async () => {
      const invite = await t.app.inject({ method: 'GET', url: '/invite' });
      expect(invite.body).toContain('data-kind="invite-signed-in"');
      expect(invite.body).toContain('autocomplete="current-password"');
      const script = await t.app.inject({ method: 'GET', url: '/assets/pages.js' });
      expect(script.body).toContain("'/api/v1/auth/login'");
      expect(script.body).toContain("'x-csrf-token': csrfToken");
    });
  });
});
