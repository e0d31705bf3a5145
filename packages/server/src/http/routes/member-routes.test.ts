import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, expectProblem, json, OWNER_EMAIL, ownerToken, PASSWORD, passwordToken, type TestApp } from '../../testing/test-app.ts';

const NEW_PASSWORD = 'a brand new long passphrase';

describeEachDialect('member routes', (open) => {
  let t: TestApp;
  let owner: string;
  beforeEach(async () => {
    t = await createTestApp(open);
    owner = await ownerToken(t);
  });
  afterEach(async () => {
    await t.close();
  });

  function post(token: string, payload: Record<string, unknown>) {
    return t.app.inject({ method: 'POST', url: '/api/v1/members', headers: bearer(token), payload });
  }
  function patch(token: string, userId: string, payload: Record<string, unknown>) {
    return t.app.inject({ method: 'PATCH', url: `/api/v1/members/${userId}`, headers: bearer(token), payload });
  }
  function remove(token: string, userId: string) {
    return t.app.inject({ method: 'DELETE', url: `/api/v1/members/${userId}`, headers: bearer(token) });
  }
  async function createResource(name: string): Promise<string> {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(owner), payload: { type: 'network', name } });
    expect(response.statusCode).toBe(201);
    return json(response).id as string;
  }
  async function resourcesSeenBy(token: string): Promise<string[]> {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/resources', headers: bearer(token) });
    expect(response.statusCode).toBe(200);
    return json(response).items.map((item: { id: string }) => item.id).sort();
  }
  function inviteTokenOf(inviteUrl: string): string {
    return inviteUrl.slice(inviteUrl.indexOf('#') + 1);
  }
  function acceptWithPassword(inviteToken: string, password: string) {
    return t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', payload: { inviteToken, password } });
  }
  async function signIn(email: string, password = PASSWORD): Promise<{ cookie: string; headers: Record<string, string> }> {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
    expect(response.statusCode).toBe(200);
    const cookie = `keyward_session=${response.cookies.find((c) => c.name === 'keyward_session')?.value}`;
    return { cookie, headers: { cookie, 'x-csrf-token': json(response).csrfToken } };
  }
  async function createOrganization(slug: string): Promise<void> {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(owner), payload: { name: slug, slug } });
    expect(response.statusCode).toBe(201);
  }
  /** An account with PASSWORD, member of another organization only. */
  async function accountElsewhere(email: string): Promise<void> {
    await createOrganization('globex');
    const globexOwner = (await passwordToken(t, { organization: 'globex', scopes: ['members:manage'] })).token;
    await addMember(t, globexOwner, email, 'viewer');
  }

  describe('POST /api/v1/members', () => {
    it('invites a person: the answer is a one-time link, and nobody is a member until it is accepted', async () => {
      const response = await post(owner, { email: 'Bob@Example.com', role: 'viewer' });
      expect(response.statusCode).toBe(201);
      expect(response.headers['cache-control']).toBe('no-store');
      const invited = json(response);
      expect(invited).toEqual({
        userId: null,
        invitationId: expect.stringMatching(/^inv_/),
        email: 'bob@example.com',
        role: 'viewer',
        resources: null,
        status: 'invited',
        hasPassword: null,
        createdAt: t.clock.now().toISOString(),
        expiresAt: new Date(t.clock.now().getTime() + 7 * 86_400_000).toISOString(),
        inviteUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:8080\/invite#[A-Za-z0-9_-]{43}$/),
        inviteToken: inviteTokenOf(invited.inviteUrl),
      });
      // Nobody can sign in as the invited person before the invitation is accepted.
      const early = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'early', email: 'bob@example.com', password: NEW_PASSWORD } });
      expect(early.statusCode).toBe(401);
      const listed = json(await t.app.inject({ method: 'GET', url: `/api/v1/members/${invited.invitationId}`, headers: bearer(owner) }));
      expect(listed).toMatchObject({ invitationId: invited.invitationId, status: 'invited', userId: null });

      t.clock.advance(1000);
      const accepted = await acceptWithPassword(invited.inviteToken, NEW_PASSWORD);
      expect(accepted.statusCode).toBe(204);
      const created = await passwordToken(t, { scopes: ['tokens:read'] }, 'bob@example.com', NEW_PASSWORD);
      expect(created.body.permission).toBe('viewer');
      const member = json(await t.app.inject({ method: 'GET', url: `/api/v1/members/${created.body.owner.id}`, headers: bearer(owner) }));
      expect(member).toMatchObject({ email: 'bob@example.com', role: 'viewer', status: 'active', hasPassword: true, invitationId: null, createdAt: t.clock.now().toISOString() });
      expectProblem(await t.app.inject({ method: 'GET', url: `/api/v1/members/${invited.invitationId}`, headers: bearer(owner) }), 404, 'not_found');

      const reused = await acceptWithPassword(invited.inviteToken, 'someone else entirely');
      expectProblem(reused, 404, 'not_found');
      // The password set first still holds.
      await passwordToken(t, { scopes: ['tokens:read'] }, 'bob@example.com', NEW_PASSWORD);
      const audit = await auditActions(t, { targetId: member.userId });
      // The early failed sign-in was of nobody: the account did not exist yet.
      expect(audit.map((event) => event.action)).toEqual(['member.added']);
      expect(audit.find((event) => event.action === 'member.added')).toMatchObject({ actor: { type: 'user', id: member.userId }, details: { role: 'viewer', invitationId: invited.invitationId } });
      expect(JSON.stringify(audit)).not.toContain(invited.inviteToken);
    });

    it('answers an email that has an account exactly like one that has none, in the answer and in the list', async () => {
      await accountElsewhere('carol@example.com');
      t.clock.advance(1000);
      const existing = await post(owner, { email: 'carol@example.com', role: 'member' });
      const fresh = await post(owner, { email: 'dave@example.com', role: 'member' });
      expect(existing.statusCode).toBe(fresh.statusCode);
      expect(Object.keys(existing.headers).sort()).toEqual(Object.keys(fresh.headers).sort());
      const [a, b] = [json(existing), json(fresh)];
      const comparable = (answer: Record<string, any>) => ({ ...answer, email: '…', invitationId: '…', inviteUrl: '…', inviteToken: '…' });
      expect(comparable(a)).toEqual(comparable(b));
      expect(a.inviteUrl).toEqual(expect.stringContaining('/invite#'));

      const listed = json(await t.app.inject({ method: 'GET', url: '/api/v1/members', headers: bearer(owner) })).items;
      const [carol, dave] = ['carol@example.com', 'dave@example.com'].map((email) => listed.find((item: { email: string }) => item.email === email));
      expect(comparable(carol)).toEqual(comparable(dave));
      expect(carol).toMatchObject({ status: 'invited', userId: null, hasPassword: null });
    });

    it("does not make an existing account a member until they accept signed in, and never touches their password", async () => {
      await accountElsewhere('carol@example.com');
      const invited = json(await post(owner, { email: 'carol@example.com', role: 'member' }));

      // Before accepting, their password and tokens get nothing here.
      const early = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'early', email: 'carol@example.com', password: PASSWORD, organization: 'acme' } });
      expectProblem(early, 401, 'unauthenticated');
      // A link cannot set the password of someone who has one.
      expectProblem(await acceptWithPassword(invited.inviteToken, NEW_PASSWORD), 409, 'conflict');
      expect((await t.app.inject({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'x', email: 'carol@example.com', password: NEW_PASSWORD } })).statusCode).toBe(401);

      const session = await signIn('carol@example.com');
      const withoutCsrf = await t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', headers: { cookie: session.cookie }, payload: { inviteToken: invited.inviteToken } });
      expectProblem(withoutCsrf, 403, 'forbidden');
      const accepted = await t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', headers: session.headers, payload: { inviteToken: invited.inviteToken } });
      expect(accepted.statusCode).toBe(204);

      const token = await passwordToken(t, { scopes: ['tokens:read'], organization: 'acme' }, 'carol@example.com', PASSWORD);
      expect(token.body).toMatchObject({ permission: 'member', organizationId: t.organizationId });
      const member = json(await t.app.inject({ method: 'GET', url: `/api/v1/members/${token.body.owner.id}`, headers: bearer(owner) }));
      expect(member).toMatchObject({ email: 'carol@example.com', role: 'member', status: 'active' });
      const audit = await auditActions(t, { targetId: token.body.owner.id, action: 'member.added' });
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ authMethod: 'session', actor: { type: 'user', id: token.body.owner.id }, details: { accepted: 'signed_in' } });
    });

    it('refuses to accept an invitation for someone signed in as another person', async () => {
      const invited = json(await post(owner, { email: 'dave@example.com', role: 'viewer' }));
      const session = await signIn(OWNER_EMAIL);
      const accepted = await t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', headers: session.headers, payload: { inviteToken: invited.inviteToken } });
      expectProblem(accepted, 403, 'forbidden');
      const withPassword = await t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', headers: session.headers, payload: { inviteToken: invited.inviteToken, password: NEW_PASSWORD } });
      expectProblem(withPassword, 400, 'validation_failed');
      // The invitation still belongs to the person it was sent to.
      expect((await acceptWithPassword(invited.inviteToken, NEW_PASSWORD)).statusCode).toBe(204);
    });

    it('limits the new member to the resources given', async () => {
      const [lab, office] = [await createResource('lab'), await createResource('office')];
      const response = await post(owner, { email: 'alice@example.com', role: 'viewer', resources: [office, lab] });
      expect(response.statusCode).toBe(201);
      expect([...json(response).resources].sort()).toEqual([lab, office].sort());
      expect((await acceptWithPassword(json(response).inviteToken, NEW_PASSWORD)).statusCode).toBe(204);

      const alice = (await passwordToken(t, { scopes: ['tokens:read'] }, 'alice@example.com', NEW_PASSWORD)).body.owner.id;
      const listed = await t.app.inject({ method: 'GET', url: `/api/v1/members/${alice}`, headers: bearer(owner) });
      expect(listed.statusCode).toBe(200);
      expect([...json(listed).resources].sort()).toEqual([lab, office].sort());
    });

    it('refuses an invitation once it has expired', async () => {
      const response = await post(owner, { email: 'bob@example.com', role: 'viewer' });
      t.clock.advance(7 * 86_400_000);
      expectProblem(await acceptWithPassword(json(response).inviteToken, NEW_PASSWORD), 404, 'not_found');
    });

    it('replaces the link when the same email is invited again, and withdraws an invitation with DELETE', async () => {
      const first = json(await post(owner, { email: 'bob@example.com', role: 'viewer' }));
      const second = json(await post(owner, { email: 'bob@example.com', role: 'member' }));
      expectProblem(await acceptWithPassword(first.inviteToken, NEW_PASSWORD), 404, 'not_found');
      const removed = await remove(owner, second.invitationId);
      expect(removed.statusCode).toBe(204);
      expectProblem(await acceptWithPassword(second.inviteToken, NEW_PASSWORD), 404, 'not_found');
      expect((await auditActions(t, { targetId: second.invitationId })).map((event) => event.action).sort()).toEqual(['member.invitation_cancelled', 'member.invited']);
    });

    it('lets only the first accepted link set a password: other invitations are then accepted signed in', async () => {
      const acme = json(await post(owner, { email: 'bob@example.com', role: 'viewer' }));
      await createOrganization('globex');
      const globexOwner = (await passwordToken(t, { organization: 'globex', scopes: ['members:manage'] })).token;
      const globex = json(await post(globexOwner, { email: 'bob@example.com', role: 'viewer' }));
      expect((await acceptWithPassword(globex.inviteToken, NEW_PASSWORD)).statusCode).toBe(204);
      // Whoever else holds the acme link cannot replace the password bob chose.
      expectProblem(await acceptWithPassword(acme.inviteToken, 'someone else entirely'), 409, 'conflict');
      await passwordToken(t, { scopes: ['tokens:read'], organization: 'globex' }, 'bob@example.com', NEW_PASSWORD);
    });

    it('answers 409 for someone who is already a member, whatever the case of the email', async () => {
      await addMember(t, owner, 'alice@example.com', 'member');
      const again = await post(owner, { email: 'ALICE@example.com', role: 'admin' });
      expect(again.statusCode).toBe(409);
      expect(json(again).code).toBe('conflict');
      const owners = await post(owner, { email: 'owner@example.com', role: 'viewer' });
      expect(owners.statusCode).toBe(409);
      expect((await auditActions(t, { action: 'member.added' })).length).toBe(1);
    });

    it('rejects unknown fields, unknown roles and short passwords field by field', async () => {
      const unknown = await post(owner, { email: 'alice@example.com', role: 'member', admin: true });
      expect(unknown.statusCode).toBe(400);
      expect(json(unknown)).toMatchObject({ code: 'validation_failed', errors: [{ field: 'admin', message: 'is not a known field' }] });

      const role = await post(owner, { email: 'alice@example.com', role: 'superuser' });
      expect(role.statusCode).toBe(400);
      expect(json(role).code).toBe('validation_failed');

      // Nobody sets a password for someone else: the person chooses theirs when accepting.
      const password = await post(owner, { email: 'alice@example.com', role: 'member', password: NEW_PASSWORD });
      expect(password.statusCode).toBe(400);
      expect(json(password).errors).toEqual([{ field: 'password', message: 'is not a known field' }]);

      const email = await post(owner, { email: 'not an email', role: 'member' });
      expect(email.statusCode).toBe(400);
      expect(await auditActions(t, { action: 'member.added' })).toEqual([]);
    });

    it('does not let an admin limited to some resources give a member more than their own', async () => {
      const lab = await createResource('lab');
      const office = await createResource('office');
      await addMember(t, owner, 'ada@example.com', 'admin', { resources: [lab] });
      const admin = (await passwordToken(t, { scopes: ['members:manage'] }, 'ada@example.com')).token;

      const everything = await post(admin, { email: 'alice@example.com', role: 'member' });
      expect(everything.statusCode).toBe(403);
      expect(json(everything).code).toBe('forbidden');
      const outside = await post(admin, { email: 'alice@example.com', role: 'member', resources: [lab, office] });
      expect(outside.statusCode).toBe(403);
      expect(json(outside).code).toBe('forbidden');

      const withinReach = await post(admin, { email: 'alice@example.com', role: 'member', resources: [lab] });
      expect(withinReach.statusCode).toBe(201);
      expect(json(withinReach).resources).toEqual([lab]);
    });
  });

  describe('GET /api/v1/members', () => {
    it('lists the members newest first with cursor pagination', async () => {
      t.clock.advance(1000);
      const alice = await addMember(t, owner, 'alice@example.com', 'viewer');
      t.clock.advance(1000);
      await post(owner, { email: 'bob@example.com', role: 'member' });
      const first = await t.app.inject({ method: 'GET', url: '/api/v1/members?limit=2', headers: bearer(owner) });
      expect(first.statusCode).toBe(200);
      const page = json(first);
      expect(page.items.map((m: { email: string }) => m.email)).toEqual(['bob@example.com', 'alice@example.com']);
      expect(page.nextCursor).toEqual(expect.any(String));
      expect(page.items[0]).not.toHaveProperty('inviteUrl');

      const second = await t.app.inject({ method: 'GET', url: `/api/v1/members?limit=2&cursor=${page.nextCursor}`, headers: bearer(owner) });
      expect(json(second)).toEqual({ items: [expect.objectContaining({ userId: t.ownerId, email: 'owner@example.com', role: 'owner', resources: null })], nextCursor: null });

      const one = await t.app.inject({ method: 'GET', url: `/api/v1/members/${alice}`, headers: bearer(owner) });
      expect(json(one)).toMatchObject({ userId: alice, email: 'alice@example.com', role: 'viewer', hasPassword: true });
    });

    it('pages through members and invitations created at the same instant without losing or repeating one', async () => {
      await addMember(t, owner, 'alice@example.com', 'viewer');
      await post(owner, { email: 'bob@example.com', role: 'viewer' });
      await addMember(t, owner, 'carol@example.com', 'viewer');
      await post(owner, { email: 'dave@example.com', role: 'viewer' });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: Array<{ email: string }>; nextCursor: string | null } = json(
          await t.app.inject({ method: 'GET', url: `/api/v1/members?limit=1${cursor ? `&cursor=${cursor}` : ''}`, headers: bearer(owner) }),
        );
        seen.push(...page.items.map((item) => item.email));
        cursor = page.nextCursor;
      } while (cursor);
      expect([...seen].sort()).toEqual(['alice@example.com', 'bob@example.com', 'carol@example.com', 'dave@example.com', 'owner@example.com']);
      // Invitations of one instant list before its members.
      expect(seen.slice(0, 2).sort()).toEqual(['bob@example.com', 'dave@example.com']);
    });

    it("answers 404 for someone who is not a member here", async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/members/usr_nobody', headers: bearer(owner) });
      expect(response.statusCode).toBe(404);
      expect(json(response).code).toBe('not_found');
    });

    it('answers 403 insufficient_scope to a viewer and to a token without members:manage', async () => {
      await addMember(t, owner, 'vera@example.com', 'viewer');
      const viewer = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] }, 'vera@example.com')).token;
      const narrowOwner = (await passwordToken(t, { scopes: ['tokens:manage'] })).token;
      for (const token of [viewer, narrowOwner]) {
        for (const request of [
          { method: 'GET' as const, url: '/api/v1/members' },
          { method: 'GET' as const, url: `/api/v1/members/${t.ownerId}` },
          { method: 'POST' as const, url: '/api/v1/members', payload: { email: 'x@example.com', role: 'viewer' } },
          { method: 'PATCH' as const, url: `/api/v1/members/${t.ownerId}`, payload: { role: 'viewer' } },
          { method: 'DELETE' as const, url: `/api/v1/members/${t.ownerId}` },
        ]) {
          const response = await t.app.inject({ ...request, headers: bearer(token) });
          expect(response.statusCode, `${request.method} ${request.url}`).toBe(403);
          expect(json(response).code).toBe('insufficient_scope');
          expect(response.headers['www-authenticate']).toContain('error="insufficient_scope", scope="members:manage"');
        }
      }
      expect(await auditActions(t, { action: 'member.removed' })).toEqual([]);
    });

    it('answers 401 without credentials', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/members' });
      expect(response.statusCode).toBe(401);
      expect(json(response).code).toBe('unauthenticated');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="keyward"');
    });
  });

  describe('PATCH /api/v1/members/:userId', () => {
    it("takes away a demoted member's admin rights on the tokens they already hold", async () => {
      const ada = await addMember(t, owner, 'ada@example.com', 'admin');
      const adminToken = await passwordToken(t, { scopes: ['tokens:read', 'tokens:manage'] }, 'ada@example.com');
      const before = await t.app.inject({ method: 'GET', url: '/api/v1/tokens?all=true', headers: bearer(adminToken.token) });
      expect(before.statusCode).toBe(200);
      expect(json(before).items).toHaveLength(2);

      const demoted = await patch(owner, ada, { role: 'member' });
      expect(demoted.statusCode).toBe(200);
      expect(json(demoted)).toMatchObject({ userId: ada, role: 'member', resources: null });

      const after = await t.app.inject({ method: 'GET', url: '/api/v1/tokens?all=true', headers: bearer(adminToken.token) });
      expect(after.statusCode).toBe(403);
      expect(json(after).code).toBe('insufficient_scope');
      expect(after.headers['www-authenticate']).toContain('scope="tokens:manage"');
      // What remains within the new role still works.
      const own = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(adminToken.token) });
      expect(own.statusCode).toBe(200);
      expect(json(own).items.map((item: { id: string }) => item.id)).toEqual([adminToken.id]);
      // Introspection shows both what the token was given and what it may do now.
      const introspected = json(await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(adminToken.token) }));
      expect(introspected.scopes).toEqual(['tokens:read', 'tokens:manage']);
      expect(introspected.permission).toBe('admin');
      expect(introspected.effective).toEqual({ scopes: ['tokens:read'], permission: 'member', resources: null });

      const audit = await auditActions(t, { targetId: ada, action: 'member.updated' });
      expect(audit).toHaveLength(1);
      expect(audit[0]?.details).toMatchObject({ from: { role: 'admin' }, to: { role: 'member' }, resourcesChanged: false });
    });

    it("narrows the resources of the member's existing tokens at once, and widens them back with null", async () => {
      const [lab, office] = [await createResource('lab'), await createResource('office')];
      const alice = await addMember(t, owner, 'alice@example.com', 'member');
      const everything = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] }, 'alice@example.com')).token;
      expect(await resourcesSeenBy(everything)).toEqual([lab, office].sort());

      const limited = await patch(owner, alice, { resources: [lab] });
      expect(limited.statusCode).toBe(200);
      expect(json(limited)).toMatchObject({ role: 'member', resources: [lab] });
      expect(await resourcesSeenBy(everything)).toEqual([lab]);
      const grant = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(everything), payload: { name: 'office only', resources: [office] } });
      expect(grant.statusCode).toBe(403);
      expect(json(grant).code).toBe('forbidden');

      const widened = await patch(owner, alice, { resources: null });
      expect(json(widened).resources).toBeNull();
      expect(await resourcesSeenBy(everything)).toEqual([lab, office].sort());
    });

    it('lets an admin manage members up to admin, but never grant owner or touch an owner', async () => {
      const ada = await addMember(t, owner, 'ada@example.com', 'admin');
      const admin = (await passwordToken(t, { scopes: ['members:manage'] }, 'ada@example.com')).token;

      const alice = await addMember(t, admin, 'alice@example.com', 'admin');

      const attempts = [
        await post(admin, { email: 'bob@example.com', role: 'owner' }),
        await patch(admin, alice, { role: 'owner' }),
        await patch(admin, ada, { role: 'owner' }),
        await patch(admin, t.ownerId, { role: 'viewer' }),
        await remove(admin, t.ownerId),
      ];
      for (const attempt of attempts) {
        expect(attempt.statusCode).toBe(403);
        expect(json(attempt).code).toBe('forbidden');
      }
      const ownerNow = await t.app.inject({ method: 'GET', url: `/api/v1/members/${t.ownerId}`, headers: bearer(owner) });
      expect(json(ownerNow).role).toBe('owner');
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/members/${alice}`, headers: bearer(owner) })).json().role).toBe('admin');
    });

    it('keeps the last owner: demoting them answers 409 until another owner exists', async () => {
      const lastOwner = await patch(owner, t.ownerId, { role: 'admin' });
      expect(lastOwner.statusCode).toBe(409);
      expect(json(lastOwner).code).toBe('conflict');

      const bob = await addMember(t, owner, 'bob@example.com', 'owner');
      const demoted = await patch(owner, t.ownerId, { role: 'admin' });
      expect(demoted.statusCode).toBe(200);
      const lastAgain = await patch(owner, bob, { role: 'member' });
      // The caller is an admin now and bob an owner: out of reach.
      expect(lastAgain.statusCode).toBe(403);
      expect(json(lastAgain).code).toBe('forbidden');
    });

    it('rejects an empty change and unknown fields', async () => {
      const alice = await addMember(t, owner, 'alice@example.com', 'member');
      const empty = await patch(owner, alice, {});
      expect(empty.statusCode).toBe(400);
      expect(json(empty).code).toBe('validation_failed');
      const unknown = await patch(owner, alice, { role: 'viewer', email: 'new@example.com' });
      expect(unknown.statusCode).toBe(400);
      expect(json(unknown).errors).toEqual([{ field: 'email', message: 'is not a known field' }]);
      expect(await auditActions(t, { action: 'member.updated' })).toEqual([]);
    });
  });

  describe('DELETE /api/v1/members/:userId', () => {
    it("refuses the removed member's tokens at once and revokes them", async () => {
      const alice = await addMember(t, owner, 'alice@example.com', 'member');
      const first = await passwordToken(t, { scopes: ['tokens:read'] }, 'alice@example.com');
      t.clock.advance(1000);
      const second = await passwordToken(t, { scopes: ['tokens:read', 'scans:read'] }, 'alice@example.com');

      const removed = await remove(owner, alice);
      expect(removed.statusCode).toBe(204);

      for (const token of [first.token, second.token]) {
        const refused = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) });
        expect(refused.statusCode).toBe(401);
        expect(json(refused).code).toBe('unauthenticated');
        expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
      }
      for (const id of [first.id, second.id]) {
        const seen = await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers: bearer(owner) });
        expect(json(seen).status).toBe('revoked');
      }
      const gone = await t.app.inject({ method: 'GET', url: `/api/v1/members/${alice}`, headers: bearer(owner) });
      expect(gone.statusCode).toBe(404);

      const audit = await auditActions(t, { targetId: alice, action: 'member.removed' });
      expect(audit).toHaveLength(1);
      expect(audit[0]?.details).toEqual({ revokedTokenIds: [first.id, second.id], userId: t.ownerId });
    });

    it('does not bring old tokens back when the person is added again', async () => {
      const alice = await addMember(t, owner, 'alice@example.com', 'member');
      const old = await passwordToken(t, { scopes: ['tokens:read'] }, 'alice@example.com');
      await remove(owner, alice);
      const again = json(await post(owner, { email: 'alice@example.com', role: 'member' }));
      // Alice still has her account, and its password: the link cannot replace it, she accepts signed in.
      expectProblem(await acceptWithPassword(again.inviteToken, NEW_PASSWORD), 409, 'conflict');
      const session = await signIn('alice@example.com');
      expect((await t.app.inject({ method: 'POST', url: '/api/v1/auth/accept-invite', headers: session.headers, payload: { inviteToken: again.inviteToken } })).statusCode).toBe(204);
      await passwordToken(t, { scopes: ['tokens:read'] }, 'alice@example.com', PASSWORD);

      const refused = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(old.token) });
      expect(refused.statusCode).toBe(401);
    });

    it('keeps the last owner: removing them answers 409', async () => {
      const response = await remove(owner, t.ownerId);
      expect(response.statusCode).toBe(409);
      expect(json(response).code).toBe('conflict');
      const stillWorks = await t.app.inject({ method: 'GET', url: '/api/v1/members', headers: bearer(owner) });
      expect(stillWorks.statusCode).toBe(200);
    });

    it("answers 404 for someone who is not a member here, and changes nobody's tokens", async () => {
      const response = await remove(owner, 'usr_nobody');
      expect(response.statusCode).toBe(404);
      expect(json(response).code).toBe('not_found');
      expect(await auditActions(t, { action: 'member.removed' })).toEqual([]);
    });
  });
});
