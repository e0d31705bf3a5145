import { get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, bearer, createTestApp, expectProblem, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

const OWNER_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read', 'keyward:verify'];

/** One parsed SSE block: a message, a `retry:` line, or a comment. */
interface Frame {
  id?: string;
  event?: string;
  data?: any;
  retry?: number;
  comment?: string;
}

function parseFrame(block: string): Frame {
  const frame: Frame = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) frame.comment = line.slice(1).trim();
    else if (line.startsWith('id: ')) frame.id = line.slice(4);
    else if (line.startsWith('event: ')) frame.event = line.slice(7);
    else if (line.startsWith('data: ')) frame.data = JSON.parse(line.slice(6));
    else if (line.startsWith('retry: ')) frame.retry = Number(line.slice(7));
  }
  return frame;
}

/** A real client on a real socket: inject() would wait for a response that never ends. */
interface EventStreamClient {
  status: number;
  headers: IncomingHttpHeaders;
  /** The next frame, heartbeats included, in order. */
  next(): Promise<Frame>;
  /** Skips frames until a message of this event type. */
  nextEvent(event: string): Promise<Frame>;
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  close(): void;
}

function openStream(baseUrl: string, token: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
  return new Promise((resolve, reject) => {
    const request = get(`${baseUrl}/api/v1/events`, { headers: { ...bearer(token), accept: 'text/event-stream', ...headers } }, (response: IncomingMessage) => {
      const frames: Frame[] = [];
      const waiting: Array<(frame: Frame) => void> = [];
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const frame = parseFrame(text.slice(0, end));
          text = text.slice(end + 2);
          const waiter = waiting.shift();
          if (waiter) waiter(frame);
          else frames.push(frame);
        }
      });
      const ended = new Promise<void>((done) => response.on('close', () => done()));
      const next = (): Promise<Frame> => {
        const frame = frames.shift();
        if (frame) return Promise.resolve(frame);
        return new Promise((done, fail) => {
          waiting.push(done);
          void ended.then(() => fail(new Error('the stream ended')));
        });
      };
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        next,
        async nextEvent(event) {
          for (;;) {
            const frame = await next();
            if (frame.event === event) return frame;
          }
        },
        ended,
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}

describeEachDialect('GET /api/v1/events', (open) => {
  let t: TestApp;
  let baseUrl: string;
  let owner: string;
  let verifier: { token: string; id: string };
  const clients: EventStreamClient[] = [];
  let isClosed = false;

  beforeEach(async () => {
    isClosed = false;
    t = await createTestApp(open);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    owner = await ownerToken(t, { scopes: OWNER_SCOPES });
    verifier = await serviceToken(await createClient('resource-server'), ['keyward:verify']);
  });
  afterEach(async () => {
    vi.useRealTimers();
    for (const client of clients.splice(0)) client.close();
    if (!isClosed) await t.close();
  });

  function request(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>, token = owner) {
    return t.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });
  }
  async function createClient(name: string): Promise<string> {
    const response = await request('POST', '/api/v1/clients', { name });
    expect(response.statusCode).toBe(201);
    return json(response).id as string;
  }
  async function serviceToken(clientId: string, scopes: string[]): Promise<{ token: string; id: string }> {
    const response = await request('POST', `/api/v1/clients/${clientId}/tokens`, { name: 'svc', scopes });
    expect(response.statusCode, response.body).toBe(201);
    return { token: json(response).token, id: json(response).id };
  }
  async function connect(headers: Record<string, string> = {}, token = verifier.token): Promise<EventStreamClient> {
    const client = await openStream(baseUrl, token, headers);
    clients.push(client);
    return client;
  }
  /** Connects and reads up to `ready`, so the stream is live. */
  async function connectLive(headers: Record<string, string> = {}, token = verifier.token): Promise<{ client: EventStreamClient; ready: Frame }> {
    const client = await connect(headers, token);
    expect(client.status).toBe(200);
    return { client, ready: await client.nextEvent('ready') };
  }
  async function revokeSomeToken(): Promise<string> {
    // Named, since the owner may belong to a second organization in some tests.
    const { id } = await passwordToken(t, { organization: 'acme', scopes: ['tokens:read'] });
    expect((await request('DELETE', `/api/v1/tokens/${id}`)).statusCode).toBe(204);
    return id;
  }

  describe('authentication', () => {
    it('answers 401 without a token', async () => {
      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/events' }), 401, 'unauthenticated');
    });

    it('answers 403 insufficient_scope for a token without keyward:verify', async () => {
      const reader = await passwordToken(t, { scopes: ['tokens:read'] });
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/events', headers: bearer(reader.token) });
      expectProblem(response, 403, 'insufficient_scope');
      expect(response.headers['www-authenticate']).toMatch(/error="insufficient_scope", scope="keyward:verify"/);
    });

    it('answers 401 for a revoked verify token', async () => {
      expect((await request('DELETE', `/api/v1/tokens/${verifier.id}`)).statusCode).toBe(204);
      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/events', headers: bearer(verifier.token) }), 401, 'unauthenticated');
    });
  });

  describe('the stream', () => {
    it('opens with the SSE headers, retry: 2000 and a ready event carrying the current position', async () => {
      const client = await connect();
      expect(client.status).toBe(200);
      expect(client.headers).toMatchObject({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff' });
      expect(client.headers['x-request-id']).toEqual(expect.any(String));
      expect(await client.next()).toEqual({ retry: 2000 });
      expect(await client.next()).toEqual({ id: expect.stringMatching(/^[0-9a-f]{12}-\d+$/), event: 'ready', data: {} });
    });

    it('sends tokens.changed after a token is revoked through the API', async () => {
      const { client } = await connectLive();
      const revoked = await revokeSomeToken();
      const frame = await client.nextEvent('invalidate');
      expect(frame).toEqual({ id: expect.stringMatching(/^[0-9a-f]{12}-\d+$/), event: 'invalidate', data: { type: 'tokens.changed', organizationId: t.organizationId, tokenIds: [revoked] } });
    });

    it("sends member.changed after a member's role changes", async () => {
      const userId = await addMember(t, owner, 'alice@example.com', 'member');
      const { client } = await connectLive();
      expect((await request('PATCH', `/api/v1/members/${userId}`, { role: 'viewer' })).statusCode).toBe(200);
      expect((await client.nextEvent('invalidate')).data).toEqual({ type: 'member.changed', organizationId: t.organizationId, userId });
    });

    it('sends client.changed after a client is deleted', async () => {
      const clientId = await createClient('acme-eu');
      const { client } = await connectLive();
      expect((await request('DELETE', `/api/v1/clients/${clientId}`)).statusCode).toBe(204);
      expect((await client.nextEvent('invalidate')).data).toEqual({ type: 'client.changed', organizationId: t.organizationId, clientId });
    });

    it('sends organization.changed after the organization is changed', async () => {
      const { client } = await connectLive();
      expect((await request('PATCH', '/api/v1/organizations/current', { name: 'Acme Europe' })).statusCode).toBe(200);
      expect((await client.nextEvent('invalidate')).data).toEqual({ type: 'organization.changed', organizationId: t.organizationId });
    });

    it("never sends another organization's events", async () => {
      expect((await request('POST', '/api/v1/organizations', { name: 'Globex', slug: 'globex' })).statusCode).toBe(201);
      const globex = await passwordToken(t, { organization: 'globex', scopes: ['members:manage', 'tokens:manage', 'keyward:verify'] });
      const { client } = await connectLive();
      const { client: globexClient } = await connectLive({}, globex.token);

      expect((await request('PATCH', '/api/v1/organizations/current', { name: 'Globex Corp' }, globex.token)).statusCode).toBe(200);
      const revoked = await revokeSomeToken();
      // Acme's stream skips Globex's change and carries its own; Globex's sees only its own.
      expect((await client.nextEvent('invalidate')).data).toEqual({ type: 'tokens.changed', organizationId: t.organizationId, tokenIds: [revoked] });
      const globexEvent = await globexClient.nextEvent('invalidate');
      expect(globexEvent.data).toMatchObject({ type: 'organization.changed' });
      expect(globexEvent.data.organizationId).not.toBe(t.organizationId);
    });

    it('ends its own stream after the event that revokes the verify token', async () => {
      const { client } = await connectLive();
      expect((await request('DELETE', `/api/v1/tokens/${verifier.id}`)).statusCode).toBe(204);
      expect((await client.nextEvent('invalidate')).data).toEqual({ type: 'tokens.changed', organizationId: t.organizationId, tokenIds: [verifier.id] });
      await client.ended;
    });

    it('sends a heartbeat comment every 15 seconds', async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      const { client } = await connectLive();
      vi.advanceTimersByTime(15_000);
      expect(await client.next()).toEqual({ comment: 'heartbeat' });
    });
  });

  describe('resume', () => {
    it('replays the events missed since Last-Event-ID, then goes live', async () => {
      const { client: first } = await connectLive();
      const firstRevoked = await revokeSomeToken();
      const seen = await first.nextEvent('invalidate');
      expect(seen.data.tokenIds).toEqual([firstRevoked]);
      first.close();
      await first.ended;

      const missedToken = await revokeSomeToken();
      expect((await request('PATCH', '/api/v1/organizations/current', { name: 'Acme Europe' })).statusCode).toBe(200);
      await t.context.deps.bus.publish({ type: 'organization.changed', organizationId: 'org_someoneelse' });

      const again = await connect({ 'last-event-id': seen.id as string });
      expect(await again.next()).toEqual({ retry: 2000 });
      const replayed = [await again.next(), await again.next()];
      expect(replayed.map((frame) => frame.data)).toEqual([
        { type: 'tokens.changed', organizationId: t.organizationId, tokenIds: [missedToken] },
        { type: 'organization.changed', organizationId: t.organizationId },
      ]);
      const ready = await again.next();
      expect(ready.event).toBe('ready');
      // Ids grow within a boot; the foreign event took a number too.
      const sequence = (frame: Frame) => Number(frame.id?.split('-')[1]);
      expect(sequence(replayed[0] as Frame)).toBeGreaterThan(sequence(seen));
      expect(sequence(ready)).toBe(sequence(replayed[1] as Frame) + 1);

      const live = await revokeSomeToken();
      expect((await again.nextEvent('invalidate')).data.tokenIds).toEqual([live]);
    });

    it('resumes from the ready position when nothing had arrived yet', async () => {
      const { client, ready } = await connectLive();
      client.close();
      const missed = await revokeSomeToken();
      const again = await connect({ 'last-event-id': ready.id as string });
      expect(await again.next()).toEqual({ retry: 2000 });
      expect((await again.next()).data).toEqual({ type: 'tokens.changed', organizationId: t.organizationId, tokenIds: [missed] });
      expect((await again.next()).event).toBe('ready');
    });

    it('sends reset for a Last-Event-ID it does not know (another replica, a restart), then goes live', async () => {
      const again = await connect({ 'last-event-id': '0123456789ab-42' });
      expect(await again.next()).toEqual({ retry: 2000 });
      expect(await again.next()).toEqual({ event: 'reset', data: { reason: 'gap' } });
      expect((await again.next()).event).toBe('ready');
      const revoked = await revokeSomeToken();
      expect((await again.nextEvent('invalidate')).data.tokenIds).toEqual([revoked]);
    });
  });

  describe('limits and shutdown', () => {
    it('answers 429 rate_limited beyond 100 open streams in one organization, and counts them in /metrics', async () => {
      const streams = await Promise.all(Array.from({ length: 100 }, () => connect()));
      expect(streams.every((client) => client.status === 200)).toBe(true);
      expect((await t.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^keyward_event_streams_open\{[^}]*\} 100$/m);

      const refused = await t.app.inject({ method: 'GET', url: '/api/v1/events', headers: bearer(verifier.token) });
      expectProblem(refused, 429, 'rate_limited');
      expect(refused.headers['retry-after']).toEqual(expect.any(String));

      streams[0]?.close();
      await vi.waitFor(async () => expect((await t.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^keyward_event_streams_open\{[^}]*\} 99$/m));
      const { client } = await connectLive();
      expect(client.status).toBe(200);
    });

    it('ends open streams when the app closes, so close() does not hang', async () => {
      const { client } = await connectLive();
      isClosed = true;
      const tooSlow = new Promise<string>((resolve) => setTimeout(() => resolve('still open after 2 s'), 2_000).unref());
      expect(await Promise.race([t.close().then(() => 'closed'), tooSlow])).toBe('closed');
      await client.ended;
    });
  });
});
