// The dashboard at 390 px wide (a phone): the nav collapses behind a menu button and
// opens, pages do not scroll sideways, forms can be filled and sent, and an API error
// is shown next to the field that caused it. The helper form's tag picker fits, and falls
// back to typing the id when the CRM cannot list its tags.
import { expect, test } from '@playwright/test';
import { expectAllLabelled, expectNoHorizontalScroll, failOnPageErrors, signIn, uniqueEmail, verifiedUser } from './support/app';

test.use({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

test('sign-up shows the API error next to the password field', async ({ page }) => {
  const noPageErrors = failOnPageErrors(page);
  await page.goto('/signup');
  await expectNoHorizontalScroll(page);
  await expectAllLabelled(page);
  await page.getByLabel('Your name').fill('Sam Short');
  await page.getByLabel('Email', { exact: true }).fill(uniqueEmail('short'));
  await page.getByLabel('Company or account name').fill('Short Co');
  await page.getByLabel('Password', { exact: true }).fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();

  const password = page.getByLabel('Password', { exact: true });
  await expect(password).toHaveAttribute('aria-invalid', 'true');
  // The message sits in the password field's own block and is announced with it.
  const field = page.locator('.field').filter({ has: password });
  const message = field.locator('.field-error');
  await expect(message).toBeVisible();
  await expect(message).toContainText(/10 characters/);
  const describedBy = (await password.getAttribute('aria-describedby')) ?? '';
  expect(describedBy.split(' ')).toContain(await message.getAttribute('id'));
  // The other fields carry no error.
  await expect(page.getByLabel('Email', { exact: true })).not.toHaveAttribute('aria-invalid', 'true');
  await expectNoHorizontalScroll(page);
  noPageErrors();
});

test('an address already registered is refused beside the email field', async ({ page, request }) => {
  const u = await verifiedUser(request, 'dup');
  await page.goto('/signup');
  await page.getByLabel('Your name').fill('Dee Dup');
  await page.getByLabel('Email', { exact: true }).fill(u.email);
  await page.getByLabel('Company or account name').fill('Dup Co');
  await page.getByLabel('Password', { exact: true }).fill('a perfectly fine passphrase');
  await page.getByRole('button', { name: 'Create account' }).click();
  const email = page.getByLabel('Email', { exact: true });
  await expect(email).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('.field').filter({ has: email }).locator('.field-error')).toBeVisible();
});

test('wrong password: a readable message, no page change', async ({ page, request }) => {
  const u = await verifiedUser(request, 'wrongpw');
  await page.goto('/signin');
  await page.getByLabel('Email', { exact: true }).fill(u.email);
  await page.getByLabel('Password', { exact: true }).fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByRole('alert')).not.toBeEmpty();
  await expect(page).toHaveURL(/\/signin/);
});

test('nav collapses and opens; pages and forms are usable at 390 px', async ({ page, request }) => {
  const noPageErrors = failOnPageErrors(page);
  const u = await verifiedUser(request, 'phone');
  await signIn(page, u.email, u.password);
  await expectNoHorizontalScroll(page);

  const toggle = page.getByRole('button', { name: 'Open menu' });
  const nav = page.getByRole('navigation', { name: 'Sections' });
  await expect(toggle).toBeVisible();
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await expect(nav.getByRole('link', { name: 'Executions' })).toBeHidden();
  await toggle.click();
  await expect(page.getByRole('button', { name: 'Close menu' })).toHaveAttribute('aria-expanded', 'true');
  for (const section of ['Helpers', 'Executions', 'Connections', 'Explorer', 'Insights', 'Settings']) {
    await expect(nav.getByRole('link', { name: section })).toBeVisible();
  }
  await nav.getByRole('link', { name: 'Connections' }).click();
  await expect(page.getByRole('heading', { name: 'Connections', level: 1 })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Executions' })).toBeHidden(); // closed again after navigating
  await expectNoHorizontalScroll(page);

  // A generated helper form: filled and saved on a phone.
  await page.getByRole('button', { name: 'Open menu' }).click();
  await nav.getByRole('link', { name: 'Helpers' }).click();
  await page.getByRole('link', { name: 'New helper' }).first().click();
  await page.getByLabel('Category').selectOption('tagging');
  await expectNoHorizontalScroll(page);
  await page.getByRole('link', { name: /^tag_it/ }).click();
  await expectNoHorizontalScroll(page);
  await expectAllLabelled(page);
  await page.getByLabel('Helper name').fill('Phone helper');
  await page.getByLabel('Action').selectOption({ label: 'remove: Remove the tags' });
  await page.getByRole('button', { name: 'Add to Tag ids' }).click();
  const tag = page.locator('#cfg_tag_it_tag_ids_0');
  await tag.scrollIntoViewIfNeeded();
  await tag.fill('105');
  // The tag picker fits the phone, and names the sandbox's tag for the id under the field.
  await expect(page.getByRole('combobox', { name: 'Choose a tag for Tag ids 1' })).toBeVisible();
  await expect(page.locator('#cfg_tag_it_tag_ids_0__tags')).toHaveText('Newsletter');
  await expectNoHorizontalScroll(page);
  await page.getByRole('button', { name: 'Create helper' }).click();
  await expect(page.getByRole('heading', { name: 'Phone helper' })).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Run URL' })).toBeVisible();
  await expectNoHorizontalScroll(page);

  // A config the API refuses: its message appears beside the settings, not a blank page.
  await page.getByRole('button', { name: 'Edit settings' }).click();
  await page.getByLabel('Action').selectOption('');
  await page.getByRole('button', { name: 'Remove', exact: true }).first().click();
  await page.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.locator('.helper-form').getByRole('alert').first()).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Phone helper' })).toBeVisible();

  for (const path of ['/executions', '/explorer', '/insights', '/settings', '/settings/team', '/settings/api-keys', '/settings/billing', '/settings/notifications']) {
    await page.goto(path);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    await expectNoHorizontalScroll(page);
    await expectAllLabelled(page);
  }
  noPageErrors();
});

test('a CRM that cannot list its tags: the tag field is typed, with the reason beside it', async ({ page, request }) => {
  const noPageErrors = failOnPageErrors(page);
  const u = await verifiedUser(request, 'notags');
  // Every CRM reachable here lists its tags (the sandbox does): the API's 409 for one that
  // cannot (GoHighLevel, …) is stood in for by a route.
  await page.route('**/v1/connections/*/tags', (route) =>
    route.fulfill({
      status: 409,
      contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'about:blank', title: 'Conflict', status: 409, detail: 'this CRM cannot list its tags here; type the id instead' }),
    }),
  );
  await signIn(page, u.email, u.password);
  await page.goto('/helpers/new/tag_it');
  await expect(page.getByRole('heading', { name: 'New tag_it helper' })).toBeVisible();
  await page.getByLabel('Helper name').fill('Typed tag');
  await page.getByLabel('Action').selectOption({ label: 'apply: Apply the tags' });
  await page.getByRole('button', { name: 'Add to Tag ids' }).click();
  const tag = page.locator('#cfg_tag_it_tag_ids_0');
  await expect(page.locator('#cfg_tag_it_tag_ids_0__tags')).toHaveText('Tag list unavailable: this CRM cannot list its tags here; type the id instead');
  await expect(page.getByRole('combobox', { name: 'Choose a tag for Tag ids 1' })).toHaveCount(0);
  await expect(tag).toBeEditable();
  await expectAllLabelled(page);
  await expectNoHorizontalScroll(page);
  await tag.fill('102');
  await page.getByRole('button', { name: 'Create helper' }).click();
  await expect(page.getByRole('heading', { name: 'Typed tag' })).toBeVisible();
  noPageErrors();
});
