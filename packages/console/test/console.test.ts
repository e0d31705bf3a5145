// The console in a real browser: Debian's Chromium driven by playwright-core,
// against a real Keyward server serving the built console. In CI a missing
// Chromium fails the run; elsewhere these tests are skipped with the reason.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startConsoleServer, startFirstRunServer, type ConsoleServer } from './console-server.ts';

const CHROMIUM = process.env.KEYWARD_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const isCi = process.env.CI === 'true' || process.env.CI === '1';
const STEP_MS = 120_000;
// KEYWARD_SCREENSHOTS=docs/images saves the README's screenshots on the way.
const SCREENSHOTS = process.env.KEYWARD_SCREENSHOTS;
const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

if (!hasChromium && !isCi) console.warn(`console browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);

describe.skipIf(!hasChromium && !isCi)('the web console in Chromium', () => {
  let server: ConsoleServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let consoleErrors: string[];

  beforeAll(async () => {
    if (!hasChromium) throw new Error(`CI needs Chromium at ${CHROMIUM} for the console tests (apt-get install -y chromium)`);
    server = await startConsoleServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    consoleErrors = [];
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      // A 4xx from the API is an answer the console handles (signed out, a
      // validation problem); Chromium still logs it. Anything else fails.
      const isApiAnswer = /^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text()) && new URL(message.location().url).pathname.startsWith('/api/');
      if (!isApiAnswer) consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  });
  afterEach(async () => {
    await context?.close();
    expect(consoleErrors).toEqual([]);
  });

  // Evaluated in the page (strings, since the test itself has no DOM types).
  const focusedText = () => page.evaluate('(document.activeElement?.textContent ?? "").trim()') as Promise<string>;
  const focusedName = () => page.evaluate('document.activeElement?.getAttribute("name") ?? null') as Promise<string | null>;

  async function screenshot(name: string): Promise<void> {
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
  }

  /** axe-core's serious and critical WCAG 2 A/AA violations on the page as it is now. */
  async function seriousViolations(): Promise<AxeViolation[]> {
    // Evaluated through the DevTools protocol, which the page's CSP does not govern.
    if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
    const { passes, violations } = (await page.evaluate(
      `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
        .then((r) => ({ passes: r.passes.length, violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => String(n.target)) })) }))`,
    )) as { passes: number; violations: AxeViolation[] };
    // An axe that checked nothing would pass every page.
    expect(passes).toBeGreaterThan(5);
    if (violations.length > 0) console.log(`axe (minor/moderate included) on ${page.url()}:`, violations.map((v) => `${v.impact} ${v.id}`).join(', '));
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  }

  async function signIn(email = server.email, password = server.password): Promise<void> {
    await page.goto(`${server.baseUrl}/tokens`);
    await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'API tokens', exact: true }).waitFor();
  }

  it('serves the console under a Content-Security-Policy without inline scripts', async () => {
    const response = await page.goto(`${server.baseUrl}/`);
    const csp = (await response?.headerValue('content-security-policy')) ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/sign-in');
  });

  it('signs in, creates a token with a preset and a resource, shows it once, and revokes it', async () => {
    await signIn();
    // The page heading shows before the list has loaded: wait for the empty state.
    await page.getByRole('heading', { name: 'No API tokens yet' }).waitFor();

    await page.getByRole('button', { name: 'Create your first token' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.getByLabel('Name', { exact: true }).fill('deploy-bot');
    await dialog.getByRole('radio', { name: '90 days' }).check();
    await dialog.getByRole('radio', { name: 'Read & write' }).check();
    await dialog.getByRole('combobox', { name: 'Add a resource' }).fill('web');
    await dialog.getByRole('option', { name: /website/ }).waitFor();
    await dialog.getByRole('combobox', { name: 'Add a resource' }).press('Enter');
    await expect(dialog.getByRole('list', { name: /Chosen resources/ }).innerText()).resolves.toContain('website');
    await dialog.getByRole('button', { name: 'Create token' }).click();

    const shown = page.getByRole('dialog', { name: 'Your new token' });
    await shown.waitFor();
    await expect(shown.innerText()).resolves.toContain('will not be shown again');
    const secret = (await shown.getByTestId('secret').innerText()).trim();
    expect(secret.length).toBeGreaterThan(20);
    await expect(server.verify(secret)).resolves.toMatchObject({ valid: true });

    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);

    const row = page.getByRole('row', { name: /deploy-bot/ });
    await row.waitFor();
    const text = await row.innerText();
    expect(text).toContain('Active');
    expect(text).toContain('owner');
    expect(text).toContain('scans:write');
    expect(text).toContain('website');

    await row.getByRole('button', { name: 'Actions for deploy-bot' }).click();
    await page.getByRole('menuitem', { name: 'Revoke…' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Revoke “deploy-bot”?' });
    await confirm.getByRole('button', { name: 'Revoke token' }).click();
    await confirm.waitFor({ state: 'detached' });
    await row.getByText('Revoked').waitFor();
    await expect(server.verify(secret)).resolves.toMatchObject({ valid: false, code: 'REVOKED' });
  }, STEP_MS);

  it("shows the server's validation message next to the field it is about", async () => {
    await signIn();
    await page.getByRole('button', { name: 'Create token' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Create an API token' });
    const name = dialog.getByLabel('Name', { exact: true });
    await name.fill('no/slashes allowed!');
    await dialog.getByRole('button', { name: 'Create token' }).click();
    await expect.poll(() => name.getAttribute('aria-invalid')).toBe('true');
    const describedBy = (await name.getAttribute('aria-describedby')) ?? '';
    const errorId = describedBy.split(' ').find((id) => id.endsWith('-error')) ?? '';
    expect(errorId).not.toBe('');
    const message = await dialog.locator(`[id="${errorId}"]`).innerText();
    expect(message.length).toBeGreaterThan(3);
    await expect(dialog.isVisible()).resolves.toBe(true);
  }, STEP_MS);

  it('creates a token with the keyboard alone: Tab, Enter and Escape', async () => {
    await signIn();
    // Tab from the top of the page to the create button.
    for (let step = 0; step < 20; step += 1) {
      await page.keyboard.press('Tab');
      if ((await focusedText()) === 'Create token') break;
    }
    expect(await focusedText()).toBe('Create token');

    // Escape closes the dialog and gives focus back to the button.
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'Create an API token' }).waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog', { name: 'Create an API token' }).waitFor({ state: 'detached' });
    await expect.poll(focusedText).toBe('Create token');

    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.waitFor();
    await expect.poll(focusedName).toBe('name');
    await page.keyboard.type('keyboard-only');
    await page.keyboard.press('Enter');

    const shown = page.getByRole('dialog', { name: 'Your new token' });
    await shown.waitFor();
    const secret = (await shown.getByTestId('secret').innerText()).trim();
    await expect(server.verify(secret)).resolves.toMatchObject({ valid: true });
    await page.keyboard.press('Escape');
    await shown.waitFor({ state: 'detached' });
    await page.getByRole('row', { name: /keyboard-only/ }).getByText('Active').waitFor();
  }, STEP_MS);

  it('puts the focus in the name field when the scope catalog arrives after the create dialog opened', async () => {
    // A slow catalog: the dialog opens on "Loading the scope catalog…", with nothing to focus yet.
    await page.route('**/api/v1/scopes', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 750));
      await route.continue();
    });
    await signIn();
    await page.getByRole('button', { name: 'Create token' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.getByLabel('Name', { exact: true }).waitFor();
    await expect.poll(focusedName).toBe('name');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  }, STEP_MS);

  it('rotates a token with a grace period, then disables and enables it', async () => {
    await signIn();
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.getByRole('button', { name: 'Create token' }).first().click();
    let dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.getByLabel('Name', { exact: true }).fill('nightly-sync');
    await dialog.getByRole('radio', { name: '7 days' }).check();
    await dialog.getByRole('button', { name: 'Create token' }).click();
    let shown = page.getByRole('dialog', { name: 'Your new token' });
    const first = (await shown.getByTestId('secret').innerText()).trim();
    await screenshot('show-once-dialog');
    await shown.getByRole('button', { name: 'I have copied it' }).click();

    const row = page.getByRole('row', { name: /nightly-sync/ });
    // Under 7 days to go: the expiry is in the warning colour.
    await row.locator('time.warn').waitFor();
    await row.getByRole('button', { name: 'Actions for nightly-sync' }).click();
    await page.getByRole('menuitem', { name: 'Rotate…' }).click();
    dialog = page.getByRole('dialog', { name: 'Rotate “nightly-sync”' });
    await dialog.getByRole('radio', { name: '1 hour' }).check();
    await dialog.getByRole('button', { name: 'Rotate token' }).click();
    shown = page.getByRole('dialog', { name: 'Your rotated token' });
    const second = (await shown.getByTestId('secret').innerText()).trim();
    expect(second).not.toBe(first);
    await expect(server.verify(second)).resolves.toMatchObject({ valid: true });
    // Within the grace period the old secret still works.
    await expect(server.verify(first)).resolves.toMatchObject({ valid: true });
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });
    // Focus is back on the row's menu button, not lost on the page.
    await expect.poll(focusedText).toMatch(/^Actions/);
    await page.getByRole('row', { name: /nightly-sync/ }).filter({ hasText: `…${first.slice(-4)}` }).getByText('Rotated').waitFor();

    // The new secret's row, found by its hint (the old one stays listed until its grace period ends).
    const current = page.getByRole('row', { name: /nightly-sync/ }).filter({ hasText: `…${second.slice(-4)}` });
    await expect(current.innerText()).resolves.not.toContain('Rotated');
    await current.getByRole('button', { name: 'Actions for nightly-sync' }).click();
    await page.getByRole('menuitem', { name: 'Disable' }).click();
    await current.getByText('Disabled').waitFor();
    // The badge shows the server's answer to the PATCH: the very next verification is refused.
    await expect(server.verify(second)).resolves.toMatchObject({ valid: false, code: 'DISABLED' });
    await current.getByRole('button', { name: 'Actions for nightly-sync' }).click();
    await page.getByRole('menuitem', { name: 'Enable' }).click();
    await current.getByText('Active').waitFor();
    await expect.poll(() => server.verify(second).then((answer) => answer.valid)).toBe(true);
    await screenshot('api-tokens');
  }, STEP_MS);

  it('switches organization: each has its own tokens', async () => {
    await signIn();
    await page.getByRole('button', { name: /^Organization: Acme/ }).click();
    await page.getByRole('menuitemradio', { name: /Globex/ }).click();
    await page.getByRole('button', { name: /^Organization: Globex/ }).waitFor();
    await page.getByRole('heading', { name: 'No API tokens yet' }).waitFor();
    await page.getByRole('button', { name: /^Organization: Globex/ }).click();
    await page.getByRole('menuitemradio', { name: /Acme/ }).click();
    await page.getByRole('row', { name: /nightly-sync/ }).first().waitFor();
  }, STEP_MS);

  it('has no serious or critical axe-core violations on the sign-in page, the tokens page and its dialogs', async () => {
    await page.goto(`${server.baseUrl}/sign-in`);
    await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();
    await screenshot('sign-in');
    const found: Record<string, AxeViolation[]> = { 'sign-in': await seriousViolations() };
    await signIn();
    await page.getByRole('row', { name: /nightly-sync/ }).first().waitFor();
    found.tokens = await seriousViolations();
    await page.getByRole('button', { name: 'Create token' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.getByRole('combobox', { name: 'Add a resource' }).press('ArrowDown');
    await dialog.getByRole('combobox', { name: 'Add a resource' }).press('Enter');
    await screenshot('create-token-dialog');
    found['create dialog'] = await seriousViolations();
    expect(found).toEqual({ 'sign-in': [], tokens: [], 'create dialog': [] });
  }, STEP_MS);

  it("invites a member, changes the member's role as owner, and finds the events in the audit log", async () => {
    await signIn();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Members' }).click();
    await page.getByRole('heading', { name: 'Members' }).waitFor();
    await page.getByRole('button', { name: 'Invite member' }).click();
    const dialog = page.getByRole('dialog', { name: 'Invite a member' });
    await dialog.getByLabel('Email').fill('dev@example.com');
    await dialog.getByLabel('Role').selectOption('member');
    await dialog.getByRole('button', { name: 'Invite' }).click();
    const shown = page.getByRole('dialog', { name: 'Invitation link' });
    const link = (await shown.getByTestId('secret').innerText()).trim();
    expect(link).toMatch(/\/invite#.+/);
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('row', { name: /dev@example\.com/ }).getByText('Invited').waitFor();

    // The person accepts the invitation from its link.
    const accepted = await fetch(`${server.baseUrl}/api/v1/auth/accept-invite`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inviteToken: link.slice(link.indexOf('#') + 1), password: 'a long password for dev' }),
    });
    expect(accepted.status).toBe(204);
    await page.reload();
    const role = page.getByLabel('Role of dev@example.com');
    await expect.poll(() => role.inputValue()).toBe('member');
    await role.selectOption('admin');
    await expect.poll(() => role.isEnabled()).toBe(true);
    await page.reload();
    await expect.poll(() => page.getByLabel('Role of dev@example.com').inputValue()).toBe('admin');
    await screenshot('members');
    const membersViolations = await seriousViolations();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.getByLabel('Action').fill('member.updated');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('row', { name: /member\.updated/ }).first().waitFor();
    const actions = await page.locator('tbody th').allInnerTexts();
    expect(actions.length).toBeGreaterThan(0);
    expect(new Set(actions)).toEqual(new Set(['member.updated']));
    await page.getByLabel('Action').fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
    // Cleared, the filter lists every action again, the invitation this test sent among them.
    await page.getByRole('row', { name: /member\.invited/ }).first().waitFor();
    await screenshot('audit-log');
    expect({ members: membersViolations, audit: await seriousViolations() }).toEqual({ members: [], audit: [] });
  }, STEP_MS);

  it('changes the token policy and adds a resource, and the create dialog follows both', async () => {
    await signIn();
    await page.getByRole('button', { name: 'Create token' }).first().click();
    let dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.getByRole('radio', { name: '30 days' }).waitFor();
    expect(await dialog.getByRole('radio', { name: 'No expiration' }).count()).toBe(0);
    await page.keyboard.press('Escape');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Resources' }).click();
    await page.getByLabel('Resource name').fill('docs');
    await page.getByRole('button', { name: 'Add resource' }).click();
    await page.getByRole('row', { name: /docs/ }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organization' }).click();
    await page.getByRole('heading', { name: 'Token policy' }).waitFor();
    await page.getByLabel('Allow tokens that never expire').check();
    await page.getByLabel('Revoke tokens unused for (days)').fill('90');
    // Too short a retention is refused next to its own field.
    await page.getByLabel('Keep revoked and expired tokens for (days)').fill('10');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.locator('.field-error').first().waitFor();
    expect(await page.getByLabel('Keep revoked and expired tokens for (days)').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Longest lifetime (days)').getAttribute('aria-invalid')).toBeNull();
    await page.getByLabel('Keep revoked and expired tokens for (days)').fill('365');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const saved = await server.t.context.deps.store.findOrganization(server.t.organizationId);
    expect(saved?.tokenPolicy).toMatchObject({ allowNoExpiry: true, revokeUnusedAfterDays: 90, retentionDays: 365 });
    await screenshot('organization');
    expect(await seriousViolations()).toEqual([]);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API tokens' }).click();
    await page.getByRole('button', { name: 'Create token' }).first().click();
    dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.getByRole('radio', { name: 'No expiration' }).waitFor();
    await dialog.getByRole('combobox', { name: 'Add a resource' }).fill('doc');
    await dialog.getByRole('option', { name: /docs/ }).waitFor();
  }, STEP_MS);

  it("creates an API client, issues it a service token, and charts the token's verifications", async () => {
    await signIn();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API clients' }).click();
    await page.getByRole('button', { name: 'New client' }).click();
    const dialog = page.getByRole('dialog', { name: 'New API client' });
    await dialog.getByLabel('Client name').fill('billing-api');
    await dialog.getByLabel('Description').fill('Invoices and payments');
    await dialog.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('link', { name: 'billing-api' }).click();
    await page.getByRole('heading', { name: 'billing-api' }).waitFor();
    await page.getByText('No verifications of this client’s tokens').waitFor();

    await page.getByRole('button', { name: 'Issue token' }).click();
    const issue = page.getByRole('dialog', { name: 'Issue a service token' });
    await issue.getByLabel('Name', { exact: true }).fill('billing-worker');
    await issue.getByRole('button', { name: 'Create token' }).click();
    const shown = page.getByRole('dialog', { name: 'Your new service token' });
    const secret = (await shown.getByTestId('secret').innerText()).trim();
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('row', { name: /billing-worker/ }).getByText('API client').waitFor();

    for (let i = 0; i < 3; i += 1) await expect(server.verify(secret)).resolves.toMatchObject({ valid: true });
    await server.t.context.usage.flush();
    await page.reload();
    await page.getByRole('figure', { name: 'Verifications in the last 24 hours: 3' }).locator('.recharts-bar-rectangle').first().waitFor();
    await screenshot('api-client');
    expect(await seriousViolations()).toEqual([]);
  }, STEP_MS);
  async function createToken(name: string): Promise<void> {
    await page.getByRole('button', { name: 'Create token' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Create an API token' });
    await dialog.getByLabel('Name', { exact: true }).fill(name);
    await dialog.getByRole('radio', { name: 'Read only' }).check();
    await dialog.getByRole('button', { name: 'Create token' }).click();
    const shown = page.getByRole('dialog', { name: 'Your new token' });
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });
  }

  async function openEdit(name: string) {
    await page.getByRole('row', { name: new RegExp(name) }).getByRole('button', { name: `Actions for ${name}` }).click();
    await page.getByRole('menuitem', { name: 'Edit…' }).click();
    const dialog = page.getByRole('dialog', { name: `Edit “${name}”` });
    await dialog.waitFor();
    return dialog;
  }

  it('edits a token: renames it and adds a scope, sending only what changed', async () => {
    await signIn();
    await page.setViewportSize({ width: 1400, height: 900 });
    await createToken('report-reader');
    const id = await page.getByRole('row', { name: /report-reader/ }).getAttribute('data-token-id');

    const dialog = await openEdit('report-reader');
    // The dialog starts from the token's settings.
    await expect(dialog.getByLabel('Name', { exact: true }).inputValue()).resolves.toBe('report-reader');
    await expect(dialog.getByRole('radio', { name: 'Read only' }).isChecked()).resolves.toBe(true);
    await dialog.getByLabel('Name', { exact: true }).fill('report-writer');
    await dialog.getByRole('checkbox', { name: /scans:write/ }).check();
    await expect(dialog.getByRole('radio', { name: 'Custom' }).isChecked()).resolves.toBe(true);
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await dialog.waitFor({ state: 'detached' });

    const row = page.getByRole('row', { name: /report-writer/ });
    await row.getByText('scans:write').waitFor();
    expect(await page.getByRole('row', { name: /report-reader/ }).count()).toBe(0);
    await expect.poll(focusedText).toMatch(/^Actions/);
    await expect(server.changedFields(id ?? '')).resolves.toEqual([['name', 'scopes']]);

    // Saving an untouched dialog sends nothing.
    const again = await openEdit('report-writer');
    await again.getByRole('button', { name: 'Save changes' }).click();
    await again.waitFor({ state: 'detached' });
    await expect(server.changedFields(id ?? '')).resolves.toEqual([['name', 'scopes']]);
  }, STEP_MS);

  it("shows an edit's validation problem next to its field and keeps the dialog open", async () => {
    await signIn();
    await page.setViewportSize({ width: 1400, height: 900 });
    await createToken('ip-bound');
    const dialog = await openEdit('ip-bound');
    await dialog.getByText('Optional restrictions').click();
    const ips = dialog.getByLabel('Allowed IP addresses');
    await ips.fill('10.0.0.0/8 not-an-address');
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(() => ips.getAttribute('aria-invalid')).toBe('true');
    const errorId = ((await ips.getAttribute('aria-describedby')) ?? '').split(' ').find((id) => id.endsWith('-error')) ?? '';
    await expect(dialog.locator(`[id="${errorId}"]`).innerText()).resolves.toContain('not-an-address is not an IPv4 or IPv6 address');
    // Only the field the problem is about is marked.
    await expect(dialog.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')).resolves.toBeNull();
    await expect(dialog.isVisible()).resolves.toBe(true);
    await screenshot('edit-token-dialog');
    expect(await seriousViolations()).toEqual([]);

    await ips.fill('10.0.0.0/8');
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect(openEdit('ip-bound').then((edit) => edit.getByLabel('Allowed IP addresses').inputValue())).resolves.toBe('10.0.0.0/8');
  }, STEP_MS);

  it("says clearly when the server refuses an edit: an admin cannot give a member's token an admin scope", async () => {
    await server.addMemberWithToken('ops@example.com', 'member', { name: 'ops-script', scopes: ['scans:read'] });
    await signIn();
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.getByLabel(/Everyone/).check();
    const dialog = await openEdit('ops-script');
    await dialog.getByRole('checkbox', { name: /members:manage/ }).check();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    const alert = dialog.getByRole('alert');
    await expect(alert.innerText()).resolves.toBe("Not allowed: The token's owner is member, which cannot hold members:manage.");
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await expect(page.getByRole('row', { name: /ops-script/ }).innerText()).resolves.not.toContain('members:manage');
  }, STEP_MS);
  it("filters the tokens page to one API client's service tokens", async () => {
    await server.addClientWithToken('reporting', 'report-exporter');
    await signIn();
    await page.setViewportSize({ width: 1400, height: 900 });
    const names = () => page.locator('tbody .token-name').allInnerTexts();
    // The client filter belongs to service tokens: it appears with that kind.
    expect(await page.getByRole('combobox', { name: /^Client\b/ }).count()).toBe(0);
    await page.getByLabel('Kind').selectOption('client');
    const clientFilter = page.getByRole('combobox', { name: /^Client\b/ });
    await page.getByRole('row', { name: /report-exporter/ }).waitFor();
    await expect.poll(names).toEqual(expect.arrayContaining(['report-exporter', 'verifier']));

    await clientFilter.selectOption({ label: 'reporting' });
    await expect.poll(names).toEqual(['report-exporter']);
    await clientFilter.selectOption({ label: 'resource-server' });
    await expect.poll(names).toEqual(['verifier']);
    expect(await seriousViolations()).toEqual([]);

    // Back to personal tokens: the client filter goes away and no longer applies.
    await page.getByLabel('Kind').selectOption('personal');
    await expect.poll(() => clientFilter.count()).toBe(0);
    await expect.poll(names).not.toContain('verifier');
  }, STEP_MS);
  it('sets Keyward up from its first-run link, signs the new owner in, and then sends anyone else to sign in', async () => {
    const first = await startFirstRunServer();
    try {
      // Without the token, the page says which link to use.
      await page.goto(`${first.baseUrl}/setup`);
      await page.getByRole('alert').filter({ hasText: 'one-time setup link' }).waitFor();

      await page.goto(`${first.baseUrl}/setup#${first.setupToken}`);
      await page.getByRole('heading', { name: 'Set up Keyward' }).waitFor();
      // Read into memory, the token leaves the address bar and the history entry.
      await expect.poll(() => page.url()).toBe(`${first.baseUrl}/setup`);
      expect(await page.evaluate('JSON.stringify(window.history.state) + JSON.stringify({ ...window.localStorage }) + JSON.stringify({ ...window.sessionStorage })')).not.toContain(first.setupToken);
      await page.getByLabel('Email').fill('founder@example.com');
      await page.getByLabel('Password', { exact: true }).fill('a long first password');
      await page.getByLabel('Repeat the password').fill('a long first passwort');
      await page.getByLabel('Organization name').fill('Initech Labs');
      await expect(page.getByLabel('Organization slug').inputValue()).resolves.toBe('initech-labs');
      await screenshot('setup');
      expect(await seriousViolations()).toEqual([]);

      // A mistyped repetition is caught before anything is sent.
      await page.getByRole('button', { name: 'Create owner and sign in' }).click();
      await expect.poll(() => page.getByLabel('Repeat the password').getAttribute('aria-invalid')).toBe('true');
      await page.getByLabel('Password', { exact: true }).fill('a long first password');
      await page.getByLabel('Repeat the password').fill('a long first password');
      await page.getByRole('button', { name: 'Create owner and sign in' }).click();

      await page.getByRole('heading', { name: 'No API tokens yet' }).waitFor();
      await page.getByRole('button', { name: /^Organization: Initech Labs/ }).waitFor();
      await page.getByText('founder@example.com').waitFor();

      // Setup is closed now: the same link leads to sign-in, without its token.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();
      await page.goto(`${first.baseUrl}/setup#${first.setupToken}`);
      await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();
      await expect.poll(() => page.url()).toBe(`${first.baseUrl}/sign-in`);
    } finally {
      // Leave the page first: a request it still had in flight to this server
      // would otherwise meet a closed port and log ERR_CONNECTION_REFUSED.
      await page.goto('about:blank');
      await first.close();
    }
  }, STEP_MS);

  it('accepts an invitation from the link the members page showed once, and signs the new member in', async () => {
    await server.addResources('project', ['mobile-app']);
    await signIn();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Members' }).click();
    await page.getByRole('button', { name: 'Invite member' }).click();
    const dialog = page.getByRole('dialog', { name: 'Invite a member' });
    await dialog.getByLabel('Email').fill('newcomer@example.com');
    await dialog.getByLabel('Role').selectOption('viewer');
    await dialog.getByRole('checkbox', { name: /mobile-app/ }).check();
    await dialog.getByRole('button', { name: 'Invite' }).click();
    const shown = page.getByRole('dialog', { name: 'Invitation link' });
    const link = (await shown.getByTestId('secret').innerText()).trim();
    const inviteToken = link.slice(link.indexOf('#') + 1);
    expect(link).toBe(`${server.baseUrl}/invite#${inviteToken}`);
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    const invitedRow = page.getByRole('row', { name: /newcomer@example\.com/ });
    await invitedRow.getByText('Invited').waitFor();
    await expect(invitedRow.innerText()).resolves.toContain('mobile-app');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();

    // The invited person opens the link.
    await page.goto(link);
    await page.getByRole('heading', { name: 'Join Keyward' }).waitFor();
    await expect.poll(() => page.url()).toBe(`${server.baseUrl}/invite`);
    expect(await page.evaluate('JSON.stringify(window.history.state) + JSON.stringify({ ...window.localStorage }) + JSON.stringify({ ...window.sessionStorage })')).not.toContain(inviteToken);
    await screenshot('invite');
    const inviteViolations = await seriousViolations();
    await page.getByLabel('Email').fill('newcomer@example.com');
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByLabel('Repeat the password').fill('short');
    await page.getByRole('button', { name: 'Set password and join' }).click();
    // The server's rule, next to its field; the link still works afterwards.
    await expect.poll(() => page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('Password', { exact: true }).fill('a long newcomer password');
    await page.getByLabel('Repeat the password').fill('a long newcomer password');
    await page.getByRole('button', { name: 'Set password and join' }).click();

    await page.getByRole('heading', { name: 'API tokens', exact: true }).waitFor();
    await page.getByText('newcomer@example.com').waitFor();
    await page.getByRole('button', { name: /^Organization: Acme/ }).waitFor();
    // A viewer: no admin pages.
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Members' }).count()).toBe(0);
    expect(inviteViolations).toEqual([]);

    // The link worked once.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();
    await page.goto(link);
    await page.getByLabel('Email').fill('newcomer@example.com');
    await page.getByLabel('Password', { exact: true }).fill('another long password');
    await page.getByLabel('Repeat the password').fill('another long password');
    await page.getByRole('button', { name: 'Set password and join' }).click();
    await page.getByRole('alert').filter({ hasText: 'This invitation link does not work' }).waitFor();
    // …and did not change the password.
    await signIn('newcomer@example.com', 'a long newcomer password');
  }, STEP_MS);

  it('lets someone who already has an account sign in from the invitation link and join, landing in the new organization', async () => {
    await server.addMember('both@example.com', 'member');
    await signIn();
    await page.getByRole('button', { name: /^Organization: Acme/ }).click();
    await page.getByRole('menuitemradio', { name: /Globex/ }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Members' }).click();
    await page.getByRole('button', { name: 'Invite member' }).click();
    const dialog = page.getByRole('dialog', { name: 'Invite a member' });
    await dialog.getByLabel('Email').fill('both@example.com');
    await dialog.getByRole('button', { name: 'Invite' }).click();
    const shown = page.getByRole('dialog', { name: 'Invitation link' });
    const link = (await shown.getByTestId('secret').innerText()).trim();
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Keyward' }).waitFor();

    await page.goto(link);
    // Choosing a password for an email that has an account is refused: the page offers signing in instead.
    await page.getByLabel('Email').fill('both@example.com');
    await page.getByLabel('Password', { exact: true }).fill('an attempt at a new password');
    await page.getByLabel('Repeat the password').fill('an attempt at a new password');
    await page.getByRole('button', { name: 'Set password and join' }).click();
    await page.getByRole('button', { name: 'Sign in and join' }).waitFor();
    await page.getByRole('alert').filter({ hasText: 'already has a Keyward account' }).waitFor();
    await page.getByLabel('Email').fill('both@example.com');
    await page.getByLabel('Password').fill(server.password);
    await page.getByRole('button', { name: 'Sign in and join' }).click();
    await page.getByRole('heading', { name: 'API tokens', exact: true }).waitFor();
    await page.getByRole('button', { name: /^Organization: Globex/ }).waitFor();
    expect(await seriousViolations()).toEqual([]);
  }, STEP_MS);

  it('says clearly that a made-up or cut-short invitation link does not work', async () => {
    await page.goto(`${server.baseUrl}/invite#made-up-invitation-token-0123456789`);
    await page.getByLabel('Email').fill('someone@example.com');
    await page.getByLabel('Password', { exact: true }).fill('a long enough password');
    await page.getByLabel('Repeat the password').fill('a long enough password');
    await page.getByRole('button', { name: 'Set password and join' }).click();
    await page.getByRole('alert').filter({ hasText: 'This invitation link does not work: it has expired, been withdrawn, or been used already.' }).waitFor();

    await page.goto(`${server.baseUrl}/invite#cut-short`);
    await page.getByLabel('Email').fill('someone@example.com');
    await page.getByLabel('Password', { exact: true }).fill('a long enough password');
    await page.getByLabel('Repeat the password').fill('a long enough password');
    await page.getByRole('button', { name: 'Set password and join' }).click();
    await page.getByRole('alert').filter({ hasText: 'This invitation link does not work' }).waitFor();

    await page.goto(`${server.baseUrl}/invite`);
    await page.getByRole('alert').filter({ hasText: 'needs the invitation link exactly as you received it' }).waitFor();
  }, STEP_MS);

  it('lists resources a page at a time, adds one, and deletes one after saying what tokens lose', async () => {
    await server.addResources('repository', Array.from({ length: 26 }, (_, i) => `repo-${String(i).padStart(2, '0')}`));
    await signIn();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Resources' }).click();
    await page.getByRole('heading', { name: 'Resources', exact: true }).waitFor();
    const names = () => page.locator('tbody th').allInnerTexts();
    await expect.poll(names).toHaveLength(25);
    const firstPage = await names();
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(async () => (await names())[0]).not.toBe(firstPage[0]);
    const secondPage = await names();
    // Every resource on one page or the other, none on both.
    expect(firstPage.filter((name) => secondPage.includes(name))).toEqual([]);
    expect([...firstPage, ...secondPage]).toEqual(expect.arrayContaining(['billing', 'website', 'repo-00', 'repo-25']));
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(names).toEqual(firstPage);
    // Newest first: what is added next is on the first page.
    server.t.clock.advance(60_000);

    // The server's rule for the type, next to its field.
    await page.getByLabel('Type').fill('Not A Type');
    await page.getByLabel('Resource name').fill('edge');
    await page.getByRole('button', { name: 'Add resource' }).click();
    await expect.poll(() => page.getByLabel('Type').getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('Type').fill('network');
    await page.getByRole('button', { name: 'Add resource' }).click();
    await page.getByRole('row', { name: /edge/ }).waitFor();
    await expect(page.getByLabel('Type').getAttribute('aria-invalid')).resolves.toBeNull();
    await screenshot('resources');
    expect(await seriousViolations()).toEqual([]);

    await page.getByRole('button', { name: 'Delete edge' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Delete network “edge”?' });
    await expect(confirm.innerText()).resolves.toContain('Tokens that list it lose that grant');
    // Cancel is focused first: Enter does nothing harmful.
    await page.keyboard.press('Enter');
    await confirm.waitFor({ state: 'detached' });
    await page.getByRole('row', { name: /edge/ }).waitFor();
    await page.getByRole('button', { name: 'Delete edge' }).click();
    await confirm.getByRole('button', { name: 'Delete resource' }).click();
    await confirm.waitFor({ state: 'detached' });
    await expect.poll(() => page.getByRole('row', { name: /edge/ }).count()).toBe(0);
  }, STEP_MS);

  it('shows a member the resources without the admin controls, and the server refuses them too', async () => {
    await server.addMember('reader@example.com', 'member');
    await signIn('reader@example.com', server.password);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Resources' }).click();
    await page.getByRole('table', { name: 'Resources' }).locator('tbody tr').first().waitFor();
    expect(await page.getByRole('button', { name: 'Add resource' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /^Delete / }).count()).toBe(0);
    expect(await seriousViolations()).toEqual([]);
    await expect(server.postWithSession('reader@example.com', '/api/v1/resources', { type: 'project', name: 'sneaky' })).resolves.toBe(403);
  }, STEP_MS);

  it('marks the expiry of a token that expires within 7 days, and no other', async () => {
    // The server runs on the test's clock, which stood still since it started (and an earlier test
    // moved it a minute on), while the console judges "within 7 days" by the browser's wall clock:
    // line the two up, or the mark depends on how long the tests before this one took.
    server.t.clock.advance(Date.now() - server.t.clock.now().getTime());
    await signIn();
    for (const [name, days] of [['expires-soon', '7 days'], ['expires-later', '30 days']] as const) {
      await page.getByRole('button', { name: 'Create token' }).first().click();
      const dialog = page.getByRole('dialog', { name: 'Create an API token' });
      await dialog.getByLabel('Name', { exact: true }).fill(name);
      await dialog.getByRole('radio', { name: days }).check();
      await dialog.getByRole('button', { name: 'Create token' }).click();
      await page.getByRole('dialog', { name: 'Your new token' }).getByRole('button', { name: 'I have copied it' }).click();
    }
    // The list refetches after each creation: wait for both rows before judging their marks.
    const soon = page.getByRole('row', { name: /expires-soon/ });
    const later = page.getByRole('row', { name: /expires-later/ });
    await soon.locator('time.warn').waitFor();
    await later.locator('time').waitFor();
    expect(await soon.locator('time.warn').count()).toBe(1);
    expect(await later.locator('time.warn').count()).toBe(0);
  }, STEP_MS);

  it('reorders chosen resources from the keyboard, focus staying on the one that moved', async () => {
    await signIn();
    await page.getByRole('button', { name: 'Create token' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Create an API token' });
    const combobox = dialog.getByRole('combobox', { name: 'Add a resource' });
    await combobox.fill('website');
    await dialog.getByRole('option', { name: /website/ }).waitFor();
    await combobox.press('Enter');
    await combobox.fill('billing');
    await dialog.getByRole('option', { name: /billing/ }).waitFor();
    await combobox.press('Enter');
    const chosen = () => dialog.getByRole('list', { name: /Chosen resources/ }).getByRole('listitem').allInnerTexts();
    const focusedLabel = () => page.evaluate('document.activeElement?.getAttribute("aria-label") ?? null') as Promise<string | null>;
    await expect.poll(async () => (await chosen()).map((text) => /website|billing/.exec(text)?.[0])).toEqual(['website', 'billing']);

    await dialog.getByRole('button', { name: 'Move billing up' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await chosen()).map((text) => /website|billing/.exec(text)?.[0])).toEqual(['billing', 'website']);
    // At the top "up" is disabled: focus lands on the same entry's other move button.
    await expect.poll(focusedLabel).toBe('Move billing down');
    await page.keyboard.press('Alt+ArrowDown');
    await expect.poll(async () => (await chosen()).map((text) => /website|billing/.exec(text)?.[0])).toEqual(['website', 'billing']);
    await expect.poll(focusedLabel).toBe('Move billing up');
    // Its "down" is disabled at the bottom, so Tab goes straight on to "Remove".
    await page.keyboard.press('Tab');
    await expect.poll(focusedLabel).toBe('Remove billing');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await chosen()).map((text) => /website|billing/.exec(text)?.[0])).toEqual(['website']);
  }, STEP_MS);
});
