// The other pages against the real API at 1280 px: connections (fields per CRM, field
// errors, the webhook URL shown once, health, the plan's limit, OAuth's refusal),
// helper actions (pause, copy, delete), execution filters and a failed execution's
// error, insights from the lake, API keys (shown once, revoked), notification
// preferences, plan and usage with checkout's refusal.
import { expect, test, type Page } from '@playwright/test';
import { expectAllLabelled, failOnPageErrors, signIn, verifiedUser } from './support/app';

async function go(page: Page, section: string) {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: section }).click();
  await expect(page.getByRole('heading', { name: section, level: 1 })).toBeVisible();
}

test('connections: per-CRM fields, errors beside them, webhook URL once, health, plan limit', async ({ page, request }) => {
  const noPageErrors = failOnPageErrors(page);
  const u = await verifiedUser(request, 'conn');
  await signIn(page, u.email, u.password);
  await go(page, 'Connections');
  await expect(page.getByRole('heading', { name: /Sandbox CRM/ })).toBeVisible();

  await page.getByRole('button', { name: 'Connect a CRM' }).click();
  await page.getByLabel('CRM', { exact: true }).selectOption('activecampaign');
  await expectAllLabelled(page);
  await page.getByLabel('API URL', { exact: true }).fill('ftp://nope');
  await page.getByRole('button', { name: 'Save connection' }).click();
  const apiUrl = page.getByLabel('API URL', { exact: true });
  await expect(apiUrl).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('.field').filter({ has: apiUrl }).locator('.field-error')).toContainText('http');
  const token = page.getByLabel('API token', { exact: true });
  await expect(page.locator('.field').filter({ has: token }).locator('.field-error')).toContainText('api_token');

  await page.getByLabel('CRM', { exact: true }).selectOption('keap');
  await page.getByLabel('Connection name').fill('Main Keap');
  await page.getByLabel('Keap API key').fill('not-a-real-key');
  await page.getByRole('button', { name: 'Save connection' }).click();
  await expect(page.getByRole('heading', { name: 'Main Keap saved' })).toBeVisible();
  const hook = await page.getByRole('textbox', { name: 'Webhook URL (with token)' }).inputValue();
  expect(hook).toMatch(/\/v1\/webhooks\/crm\/keap\/conn_[0-9a-f]+\?token=[0-9a-f]+$/);
  await page.getByRole('button', { name: 'Done' }).click();

  const card = page.locator('section.card').filter({ has: page.getByRole('heading', { name: /^Main Keap/ }) });
  await expect(card.getByRole('textbox', { name: 'Webhook URL', exact: true })).toHaveValue(/\/v1\/webhooks\/crm\/keap\/conn_/);
  await card.getByRole('button', { name: 'Check health' }).click();
  // No internet here: Keap cannot answer, and the page says so in words.
  await expect(card.getByRole('status').filter({ hasText: 'Not healthy' })).toBeVisible({ timeout: 30_000 });
  await card.getByRole('button', { name: 'Connect with OAuth' }).click();
  await expect(card.getByRole('alert').filter({ hasText: 'OAuth' })).toBeVisible();

  // The trial's one connection is used: the API's refusal is shown on the form.
  await page.getByRole('button', { name: 'Connect a CRM' }).click();
  await page.getByLabel('CRM', { exact: true }).selectOption('hubspot');
  await page.getByRole('button', { name: 'Save connection' }).click();
  await expect(page.locator('section.card').filter({ hasText: 'Connect a CRM' }).getByRole('alert')).toContainText(/connection/i);

  await page.goto('/connections?connected=conn_example');
  await expect(page.getByRole('status').filter({ hasText: 'Connected' })).toBeVisible();
  // The vendor's redirect back with a state the API never issued: the browser lands on
  // this page with the reason.
  await page.goto('/v1/oauth/callback?code=x&state=not-a-state');
  await expect(page).toHaveURL(/\/connections\?oauth_error=/);
  await expect(page.getByRole('alert').filter({ hasText: 'The connection was not authorised' })).toBeVisible();
  noPageErrors();
});

test('helper actions, execution filters, a failure, insights', async ({ page, request }) => {
  const noPageErrors = failOnPageErrors(page);
  const u = await verifiedUser(request, 'acts');
  await signIn(page, u.email, u.password);
  await page.getByRole('link', { name: 'New helper' }).first().click();
  await page.getByLabel('Category').selectOption('tagging');
  await page.getByRole('link', { name: /^tag_it/ }).click();
  await page.getByLabel('Helper name').fill('Tag customers');
  await page.getByRole('button', { name: 'Fill in the example settings' }).click();
  await page.getByRole('button', { name: 'Create helper' }).click();
  await expect(page.getByRole('heading', { name: 'Tag customers' })).toBeVisible();
  const runUrl = await page.getByRole('textbox', { name: 'Run URL' }).inputValue();

  // One success and one failure (the sandbox has no contact 404).
  expect((await request.post(runUrl, { form: { contactId: '1' } })).status()).toBe(202);
  expect((await request.post(runUrl, { form: { contactId: '404' } })).status()).toBe(202);

  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByText('Paused: its URL answers 423')).toBeVisible();
  expect((await request.post(runUrl, { form: { contactId: '2' } })).status()).toBe(423);
  await page.getByRole('button', { name: 'Enable' }).click();
  await expect(page.getByText('Paused: its URL answers 423')).toBeHidden();

  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Tag customers (copy)' })).toBeVisible();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('button', { name: 'Yes' }).click();
  await expect(page.getByRole('heading', { name: 'Helpers', level: 1 })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Tag customers (copy)' })).toBeHidden();
  await expect(page.getByRole('link', { name: 'Tag customers', exact: true })).toBeVisible();

  await go(page, 'Executions');
  const table = page.getByRole('table', { name: 'Executions' });
  await expect(table.getByRole('row')).toHaveCount(3, { timeout: 30_000 }); // header + 2
  await page.getByLabel('Status').selectOption('failed');
  await expect(table.getByRole('row')).toHaveCount(2);
  await expect(table).toContainText('404');
  await table.getByRole('row').nth(1).getByRole('link').click();
  await expect(page.getByRole('heading', { name: 'Error' })).toBeVisible();
  await expect(page.locator('.card-error')).toContainText('404');
  // Retry runs the saved helper again; the contact still does not exist, so it fails too.
  await page.getByRole('button', { name: 'Retry' }).click();
  await expect(page.getByText('Retry of')).toBeVisible();

  await go(page, 'Executions');
  await page.getByLabel('Contact id').fill('1');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/contact_id=1/);
  await expect(table.getByRole('row')).toHaveCount(2);
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await expect(page).not.toHaveURL(/contact_id/);

  await go(page, 'Insights');
  const perDay = page.locator('section.insight').filter({ has: page.getByRole('heading', { name: 'Executions per day' }) });
  await expect(async () => {
    await page.reload();
    await expect(perDay.locator('svg').first()).toBeVisible({ timeout: 3_000 });
  }).toPass({ timeout: 45_000, intervals: [2_000] });
  const failing = page.locator('section.insight').filter({ has: page.getByRole('heading', { name: 'Most-failing helpers' }) });
  await expect(failing).toContainText('Tag customers');
  await expect(page.locator('section.insight').filter({ has: page.getByRole('heading', { name: 'Success rate per helper' }) })).toContainText('Tag customers');
  noPageErrors();
});

test('settings: API key shown once and revoked, preferences kept, plan and usage', async ({ page, request }) => {
  const noPageErrors = failOnPageErrors(page);
  const u = await verifiedUser(request, 'set');
  await signIn(page, u.email, u.password);
  await go(page, 'Settings');
  await expect(page.getByText(u.email)).toBeVisible();
  await expect(page.getByLabel('Account name')).toHaveValue(u.accountName);
  await page.getByLabel('Account name').fill('Renamed Co');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByText('Saved.')).toBeVisible();
  await expect(page.locator('.topbar')).toContainText('Renamed Co');

  const tabs = page.getByRole('navigation', { name: 'Settings sections' });
  await tabs.getByRole('link', { name: 'API keys' }).click();
  await page.getByLabel('Key name').fill('Zapier');
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = await page.getByRole('textbox', { name: 'New API key' }).inputValue();
  expect(key).toMatch(/^mfh_/);
  // The key works for the API…
  expect((await request.get('/v1/account', { headers: { 'X-Api-Key': key } })).status()).toBe(200);
  await page.getByRole('button', { name: 'I have copied it' }).click();
  await expect(page.getByRole('textbox', { name: 'New API key' })).toBeHidden();
  const row = page.getByRole('table', { name: 'API keys' }).getByRole('row').filter({ hasText: 'Zapier' });
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByRole('button', { name: 'Yes' }).click();
  await expect(row).toContainText('revoked', { ignoreCase: true });
  // …until it is revoked.
  await expect(async () => {
    expect((await request.get('/v1/account', { headers: { 'X-Api-Key': key } })).status()).toBe(401);
  }).toPass({ timeout: 10_000 });

  await tabs.getByRole('link', { name: 'Notifications' }).click();
  const usage = page.getByLabel('Usage alerts');
  await expect(usage).toBeChecked();
  await usage.uncheck();
  await page.getByRole('button', { name: 'Save preferences' }).click();
  await expect(page.getByText('Preferences saved.')).toBeVisible();
  await page.reload();
  await expect(page.getByLabel('Usage alerts')).not.toBeChecked();
  await expect(page.getByLabel('Execution failures')).toBeChecked();
  await expect(page.getByText(/Always sent/)).toBeVisible();

  await tabs.getByRole('link', { name: 'Plan and usage' }).click();
  await expect(page.getByRole('heading', { name: /Plan: trial/ })).toBeVisible();
  await expect(page.getByText(/Executions: /)).toBeVisible();
  await page.getByRole('button', { name: 'Choose Start' }).click();
  // No Stripe here: the refusal is shown, the page stays.
  await expect(page.getByRole('alert').filter({ hasText: 'Checkout could not start' })).toBeVisible();
  await page.getByRole('button', { name: 'Open billing portal' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'billing portal' })).toBeVisible();
  noPageErrors();
});
