// A real Keyward app on a real database for route tests: real argon2, real
// rate limiter, a clock the test can move, and captured logs.
import { Writable } from 'node:stream';
import { acceptInvite, bootstrapOwner, parseKeyring, newKeyringEntry, type Keyring } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../app.ts';
import { loadConfig, type KeywardConfig } from '../config/config.ts';
import type { App, AppContext } from '../http/app-types.ts';
import type { Database } from '../storage/index.ts';

export const OWNER_EMAIL = 'owner@example.com';
export const PASSWORD = 'correct horse battery staple';

export interface TestClock {
  now: () => Date;
  advance(ms: number): void;
}

export function createClock(start = new Date('2026-01-05T10:00:00.000Z')): TestClock {
  let current = start.getTime();
  return { now: () => new Date(current), advance: (ms) => void (current += ms) };
}

export interface TestApp {
  app: App;
  context: AppContext;
  config: KeywardConfig;
  database: Database;
  clock: TestClock;
  /** Every log line written so far. */
  logs: string[];
  organizationId: string;
  ownerId: string;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  keyring?: Keyring;
  /** The built web console to serve (packages/console/dist by default). */
  consoleDir?: string;
}

export async function createTestApp(open: () => Promise<Database>, options: TestAppOptions = {}): Promise<TestApp> {
  const database = await open();
  // A generous password-flow limit, so only the rate-limit test meets it.
  const config = loadConfig({ LOG_LEVEL: 'info', KEYWARD_PASSWORD_FLOW_MAX: '1000', KEYWARD_CONFIG: '', ...options.env }, '/nonexistent-keyward-test-dir');
  const keyring = options.keyring ?? parseKeyring(newKeyringEntry('v1'));
  const clock = createClock();
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const { app, context } = await buildApp({ config, database, keyring, now: clock.now, logStream, consoleDir: options.consoleDir });
  await app.ready();
  const { user, organization } = await bootstrapOwner(context.deps, { email: OWNER_EMAIL, password: PASSWORD, organizationName: 'Acme', organizationSlug: 'acme' });
  return {
    app,
    context,
    config,
    database,
    clock,
    logs,
    organizationId: organization.id,
    ownerId: user.id,
    async close() {
      await app.close();
      await database.close();
    },
  };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export function json<T = Record<string, any>>(response: LightMyRequestResponse): T {
  return response.json() as T;
}

/** Creates a personal token with the headless password flow. */
export async function passwordToken(t: TestApp, body: Record<string, unknown> = {}, email = OWNER_EMAIL, password = PASSWORD): Promise<{ token: string; id: string; body: Record<string, any> }> {
  const response = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', payload: { name: `t-${Math.random().toString(36).slice(2, 10)}`, email, password, ...body } });
  if (response.statusCode !== 201) throw new Error(`password flow failed: ${response.statusCode} ${response.body}`);
  const created = json(response);
  return { token: created.token, id: created.id, body: created };
}

/** An owner token with the full management scopes. */
export async function ownerToken(t: TestApp, extra: Record<string, unknown> = {}): Promise<string> {
  const scopes = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read'];
  return (await passwordToken(t, { scopes, ...extra })).token;
}

/**
 * Adds a member with PASSWORD: invites them through the API as the owner,
 * then accepts as a new person would (in the domain, so the per-IP limit of
 * the accept route is left to the tests about it).
 */
export async function addMember(t: TestApp, ownerBearer: string, email: string, role: string, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await t.app.inject({ method: 'POST', url: '/api/v1/members', headers: bearer(ownerBearer), payload: { email, role, ...extra } });
  if (response.statusCode !== 201) throw new Error(`inviting a member failed: ${response.statusCode} ${response.body}`);
  const accepted = await acceptInvite(t.context.deps, json(response).inviteToken as string, { password: PASSWORD });
  return accepted.userId;
}

export async function auditActions(t: TestApp, filter: { targetId?: string; action?: string } = {}) {
  return t.context.deps.store.listAuditEvents({ organizationId: t.organizationId, limit: 1000, targetId: filter.targetId, action: filter.action });
}

/** Asserts an RFC 9457 answer with this status and code, and returns its body. */
export function expectProblem(response: LightMyRequestResponse, status: number, code: string): Record<string, any> {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = json(response);
  expect(body).toMatchObject({ type: `urn:keyward:problem:${code}`, status, code });
  expect(body.title).toEqual(expect.any(String));
  expect(body.detail).toEqual(expect.stringMatching(/.+/));
  return body;
}

/** Asserts a 401 for a request without credentials, with a Bearer challenge. */
export function expectUnauthenticated(response: LightMyRequestResponse): void {
  expectProblem(response, 401, 'unauthenticated');
  expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="keyward"/);
}

/** Asserts a 403 for a bearer token short of the route's scope, with its RFC 6750 insufficient_scope challenge. */
export function expectInsufficientScope(response: LightMyRequestResponse): void {
  expect(response.statusCode, response.body).toBe(403);
  const code = json(response).code as string;
  expect(['insufficient_scope', 'forbidden']).toContain(code);
  expectProblem(response, 403, code);
  expect(response.headers['www-authenticate']).toMatch(/^Bearer .*error="insufficient_scope"/);
}

/** Asserts a 401 for a refused bearer token, with its RFC 6750 invalid_token challenge. */
export function expectInvalidToken(response: LightMyRequestResponse): void {
  expectProblem(response, 401, 'unauthenticated');
  expect(response.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
}

