// Writes docs/screenshots/<page>-<width>.png of every page at 1280 and 390 px, with real
// data made through the dashboard and the API first (run by
// `scripts/browser-test --screenshots`, which sets MFH_SCREENSHOTS to the directory).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { waitForLink } from './support/outbox';
import { expectNoHorizontalScroll, signIn, uniqueEmail, verifiedUser } from './support/app';

const dir = process.env.MFH_SCREENSHOTS ?? '';
const WIDTHS = [1280, 390];

test.skip(!dir, 'MFH_SCREENSHOTS is not set (scripts/browser-test --screenshots sets it)');
test.setTimeout(300_000);

async function settle(page: Page) {
  await page.waitForLoadState('networkidle');
  await expect(page.locator('.loading')).toHaveCount(0, { timeout: 20_000 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(300);
}

/** Captures `path` at each width; `prepare` runs after each load (fill a form, run a query). */
async function shoot(page: Page, name: string, path: string, prepare?: (page: Page) => Promise<void>) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: width > 600 ? 900 : 844 });
    await page.goto(path);
    await settle(page);
    if (prepare) {
      await prepare(page);
      await settle(page);
    }
    await expectNoHorizontalScroll(page);
    await page.screenshot({ path: join(dir, `${name}-${width}.png`), fullPage: true });
  }
}

test('screenshots of every page at 1280 and 390 px', async ({ page, browser, request }) => {
  mkdirSync(dir, { recursive: true });

  // Signed out.
  await shoot(page, 'signin', '/signin');
  await shoot(page, 'signup', '/signup');
  await shoot(page, 'reset', '/reset');

  const u = await verifiedUser(request, 'shots');
  await signIn(page, u.email, u.password);
  const csrf = (await page.context().cookies()).find((c) => c.name === 'mfh_csrf')?.value ?? '';
  const post = (url: string, data: unknown) => page.request.post(url, { data, headers: { 'X-CSRF-Token': csrf } });

  // Helpers, made through the API as the dashboard would, and their runs.
  const helpers: { name: string; helper: string; config: unknown }[] = [
    { name: 'Tag VIP buyers', helper: 'tag_it', config: { action: 'apply', tag_ids: ['102'] } },
    { name: 'Count purchases', helper: 'math_it', config: { field: '_Purchases', operation: 'add', operand: 1 } },
    { name: 'Webinar follow-up tag', helper: 'tag_it', config: { action: 'apply', tag_ids: ['103', '205'] } },
  ];
  const runUrls: string[] = [];
  const ids: string[] = [];
  for (const h of helpers) {
    const r = await post('/v1/helpers', { ...h, connection_id: 'sandbox' });
    expect(r.status(), await r.text()).toBe(201);
    const body = await r.json();
    runUrls.push(body.run_url);
    ids.push(body.helper_id);
  }
  for (const [i, url] of runUrls.entries()) {
    for (const contact of ['1', '2', '3', '4', '5', '6', '7'].slice(0, 7 - i * 2)) {
      expect((await request.post(url, { form: { contactId: contact } })).status()).toBe(202);
    }
  }
  // Two failures: contacts the sandbox does not have.
  await request.post(runUrls[0], { form: { contactId: '404' } });
  await request.post(runUrls[1], { form: { contactId: '405' } });

  const invite = uniqueEmail('teammate');
  expect((await post('/v1/team/invites', { email: invite, role: 'member' })).status()).toBe(201);
  expect((await post('/v1/api-keys', { name: 'Zapier', role: 'admin' })).status()).toBe(201);
  expect((await post('/v1/connections', { platform: 'keap', name: 'Main Keap', credentials: { token: 'demo-key' } })).status()).toBe(201);

  await shoot(page, 'helpers', '/helpers');
  await shoot(page, 'helper-types', '/helpers/new');
  await shoot(page, 'helper-new', '/helpers/new/tag_it', async (p) => {
    await p.getByLabel('Helper name').fill('Tag VIP buyers');
    await p.getByLabel('Action').selectOption({ label: 'apply: Apply the tags' });
    await p.getByRole('button', { name: 'Add to Tag ids' }).click();
    await p.locator('#cfg_tag_it_tag_ids_0').fill('102');
  });
  // Contact 7 has not had the webinar tags yet, so the dry run shows what it would add.
  await shoot(page, 'helper-detail', `/helpers/${ids[2]}`, async (p) => {
    await p.getByLabel('Contact id').fill('7');
    await p.getByRole('button', { name: 'Dry run' }).click();
    await expect(p.locator('.dry-run-result')).toBeVisible();
  });

  // Executions: wait until every run has finished.
  await expect(async () => {
    const r = await page.request.get('/v1/executions', { params: { status: 'queued', limit: 1 } });
    expect((await r.json()).items).toHaveLength(0);
  }).toPass({ timeout: 60_000 });
  const list = await (await page.request.get('/v1/executions', { params: { limit: 100 } })).json();
  const ok = list.items.find((x: { status: string; helper: string }) => x.status === 'succeeded' && x.helper === 'tag_it');
  const failed = list.items.find((x: { status: string }) => x.status === 'failed');
  await shoot(page, 'executions', '/executions');
  await shoot(page, 'execution-detail', `/executions/${ok.execution_id}`);
  await shoot(page, 'execution-failed', `/executions/${failed.execution_id}`);
  await shoot(page, 'connections', '/connections');

  // The lake has every run before the explorer and insights are shown.
  await expect(async () => {
    const r = await post('/v1/explorer/query', { sql: 'select count(*) as n from executions' });
    expect((await r.json()).rows[0][0]).toBeGreaterThanOrEqual(list.items.length);
  }).toPass({ timeout: 60_000, intervals: [2_000] });
  await shoot(page, 'explorer', '/explorer', async (p) => {
    await p.getByRole('button', { name: 'Run query' }).click();
    await expect(p.getByRole('table', { name: 'Query results' })).toBeVisible();
  });
  await shoot(page, 'insights', '/insights');
  await shoot(page, 'settings-profile', '/settings');
  await shoot(page, 'settings-team', '/settings/team');
  await shoot(page, 'settings-api-keys', '/settings/api-keys');
  await shoot(page, 'settings-billing', '/settings/billing');
  await shoot(page, 'settings-notifications', '/settings/notifications');

  // The invitation as the teammate sees it (viewing does not use it up).
  const { link } = await waitForLink({ to: invite, path: '/invite' });
  const other = await browser.newContext();
  const p2 = await other.newPage();
  await shoot(p2, 'invite', new URL(link).pathname + new URL(link).search);
  await other.close();

  // The menu open on a phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/helpers');
  await settle(page);
  await page.getByRole('button', { name: 'Open menu' }).click();
  await page.screenshot({ path: join(dir, 'nav-open-390.png') });
});
