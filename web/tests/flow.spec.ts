// The path issue 11 names, end to end in a real browser against a real `mfh up`: sign
// up → verify by the emailed link → sign in → create a tag_it helper on the sandbox,
// its tag chosen by name in the tag picker (the sandbox's tags, seed/sandbox.json) → POST
// its run URL as Keap does → the execution in the list, its detail showing the tag
// change → the same execution in the explorer → invite a teammate who accepts in a
// second browser context → reset the password (the old one stops working).
import { expect, test } from '@playwright/test';
import { waitForLink } from './support/outbox';
import { PASSWORD, expectAllLabelled, failOnPageErrors, uniqueEmail } from './support/app';

const NEW_PASSWORD = 'another long passphrase 7';

test('sign up, run a helper from its URL, explore, invite, reset', async ({ page, browser, request }) => {
  test.setTimeout(300_000); // many steps, on a 2-core machine that may be building too
  const noPageErrors = failOnPageErrors(page);
  const email = uniqueEmail('owner');
  const accountName = 'Flow Test Co';
  let runUrl = '';
  let executionId = '';

  await test.step('sign up', async () => {
    await page.goto('/');
    await expect(page).toHaveURL(/\/signin/);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await expectAllLabelled(page);
    await page.getByLabel('Your name').fill('Olive Owner');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Company or account name').fill(accountName);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.getByRole('heading', { name: 'Check your email' })).toBeVisible();
    await expect(page.getByText(email)).toBeVisible();
  });

  await test.step('signing in before verifying is refused with a reason', async () => {
    await page.goto('/signin');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toContainText(/confirm your email/i);
    await page.getByRole('button', { name: 'Send a new verification link' }).click();
    await expect(page.getByText(`A new verification link is on its way to ${email}`)).toBeVisible();
  });

  await test.step('verify by the emailed link', async () => {
    const { link } = await waitForLink({ to: email, path: '/verify' });
    await page.goto(link);
    await expect(page.getByText(`${email} is verified`)).toBeVisible();
    await page.getByRole('link', { name: 'Continue to sign in' }).click();
  });

  await test.step('sign in', async () => {
    await expect(page.getByLabel('Email', { exact: true })).toHaveValue(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Helpers', level: 1 })).toBeVisible();
    await expect(page.getByText(accountName)).toBeVisible();
  });

  await test.step('create a tag_it helper on the sandbox', async () => {
    await page.getByRole('link', { name: 'New helper' }).first().click();
    await page.getByLabel('Search helper types').fill('tag_it');
    await page.getByRole('link', { name: /^tag_it/ }).click();
    await expect(page.getByRole('heading', { name: 'New tag_it helper' })).toBeVisible();
    await page.getByLabel('Helper name').fill('Tag VIP');
    await expect(page.getByLabel('CRM connection')).toHaveValue('sandbox');
    await page.getByLabel('Action').selectOption({ label: 'apply: Apply the tags' });
    await page.getByRole('button', { name: 'Add to Tag ids' }).click();
    // The tag picker lists the sandbox's tags (seed/sandbox.json) by name, by category.
    const tagId = page.locator('#cfg_tag_it_tag_ids_0');
    const picker = page.getByRole('combobox', { name: 'Choose a tag for Tag ids 1' });
    await expect(picker.getByRole('option', { name: 'VIP', exact: true })).toHaveCount(1);
    await expect(picker.getByRole('option', { name: 'Customer', exact: true })).toHaveCount(1);
    await expect(picker.locator('optgroup[label="Webinars"] option')).toHaveText(['Webinar: April', 'Webinar: March']);
    // A typed id is named under the field; choosing a tag by name puts its id in the field.
    const named = page.locator('#cfg_tag_it_tag_ids_0__tags');
    await tagId.fill('103');
    await expect(named).toHaveText('Webinar: March · Webinars');
    await expect(picker).toHaveValue('103');
    await picker.selectOption({ label: 'VIP' });
    await expect(tagId).toHaveValue('102');
    await expect(named).toHaveText('VIP');
    await expectAllLabelled(page);
    await page.getByRole('button', { name: 'Create helper' }).click();
    await expect(page.getByRole('heading', { name: 'Tag VIP' })).toBeVisible();
    // The saved config has the chosen tag's id.
    const helperId = new URL(page.url()).pathname.split('/').pop() ?? '';
    expect(helperId).toMatch(/^hlp_/);
    const saved = await page.request.get(`/v1/helpers/${helperId}`);
    expect(saved.status(), await saved.text()).toBe(200);
    expect((await saved.json()).config).toMatchObject({ action: 'apply', tag_ids: ['102'] });
    runUrl = await page.getByRole('textbox', { name: 'Run URL' }).inputValue();
    expect(runUrl).toMatch(/\/v1\/run\/hlp_[0-9a-f]+\./);
  });

  await test.step('a dry run shows the change without making it', async () => {
    await page.getByLabel('Contact id').fill('4');
    await page.getByRole('button', { name: 'Dry run' }).click();
    const result = page.locator('.dry-run-result');
    await expect(result).toContainText('apply tag');
    await expect(result).toContainText('102');
  });

  await test.step('POST the run URL as Keap does', async () => {
    // Keap's "Send HTTP Post": the URL and form-encoded name/value pairs, no headers.
    const r = await request.post(runUrl, { form: { contactId: '3' } });
    expect(r.status(), await r.text()).toBe(202);
    executionId = (await r.json()).execution_id;
    expect(executionId).toBeTruthy();
  });

  await test.step('the execution appears in the list and its detail shows the tag change', async () => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Executions' }).click();
    const row = page
      .getByRole('table', { name: 'Executions' })
      .getByRole('row')
      .filter({ hasText: 'Tag VIP' })
      .filter({ has: page.getByRole('cell', { name: '3', exact: true }) });
    await expect(row.first()).toBeVisible();
    await expect(row.first()).toContainText('succeeded', { ignoreCase: true, timeout: 30_000 });
    await row.first().getByRole('link').click();
    await expect(page).toHaveURL(new RegExp(`/executions/${executionId}$`));
    const changes = page.getByRole('table', { name: 'Changes' });
    await expect(changes).toContainText('tag applied');
    await expect(changes).toContainText('102');
  });

  await test.step('query it in the explorer', async () => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Explorer' }).click();
    const editor = page.getByRole('textbox', { name: 'SQL query' });
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.type(
      `select helper, status, contact_id, count(*) as runs from executions where execution_id = '${executionId}' group by all`,
    );
    await page.keyboard.press('Escape');
    // The sink writes the lake a few seconds after the result: ask again until it is there.
    const grid = page.getByRole('table', { name: 'Query results' });
    await expect(async () => {
      await page.getByRole('button', { name: 'Run query' }).click();
      await expect(page.getByRole('button', { name: 'Run query' })).toBeEnabled();
      await expect(grid).toContainText('succeeded', { timeout: 1_000 });
    }).toPass({ timeout: 45_000, intervals: [1_000, 2_000] });
    await expect(grid).toContainText('tag_it');
    await expect(grid.getByRole('cell', { name: '3', exact: true })).toBeVisible();
    await expect(page.getByRole('figure', { name: 'Chart of the query result' }).locator('svg').first()).toBeVisible();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    expect(download.suggestedFilename()).toBe('mfh-query.csv');
  });

  const teammate = uniqueEmail('mate');
  await test.step('invite a teammate, who accepts in a second browser context', async () => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('navigation', { name: 'Settings sections' }).getByRole('link', { name: 'Team' }).click();
    await page.getByLabel('Email', { exact: true }).fill(teammate);
    await page.getByLabel('Role', { exact: true }).selectOption('member');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await expect(page.getByText(`Invitation sent to ${teammate}`)).toBeVisible();
    await expect(page.getByRole('table', { name: 'Team members' })).toContainText(teammate);

    const { link } = await waitForLink({ to: teammate, path: '/invite' });
    const other = await browser.newContext();
    const p2 = await other.newPage();
    await p2.goto(link);
    await expect(p2.getByText(`You are invited to join ${accountName} as member`)).toBeVisible();
    await expectAllLabelled(p2);
    await p2.getByLabel('Your name').fill('Mia Mate');
    await p2.getByLabel('Choose a password').fill(PASSWORD);
    await p2.getByRole('button', { name: 'Accept invitation' }).click();
    await expect(p2.getByText(`You joined ${accountName}`)).toBeVisible();
    await expect(p2.getByLabel('Email', { exact: true })).toHaveValue(teammate);
    await p2.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await p2.getByRole('button', { name: 'Sign in' }).click();
    await expect(p2.getByRole('heading', { name: 'Helpers', level: 1 })).toBeVisible();
    // The same account: the owner's helper is there.
    await expect(p2.getByRole('link', { name: 'Tag VIP' })).toBeVisible();
    await other.close();

    await page.reload();
    const row = page.getByRole('table', { name: 'Team members' }).getByRole('row').filter({ hasText: teammate });
    await expect(row).toContainText('active', { ignoreCase: true });
  });

  await test.step('reset the password: the link works, the new password signs in, the old does not', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/signin/);
    const asked = Date.now() - 1_000;
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await expect(page.getByText('a link to set a new password is on its way')).toBeVisible();

    const { link } = await waitForLink({ to: email, path: '/reset', after: asked });
    await page.goto(link);
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await expect(page.getByText('Your password was changed')).toBeVisible();

    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toBeVisible();
    await expect(page).toHaveURL(/\/signin/);

    await page.getByLabel('Password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Helpers', level: 1 })).toBeVisible();

    // The link worked once.
    await page.goto(link);
    await page.getByLabel('New password', { exact: true }).fill('yet another passphrase 9');
    await page.getByLabel('Repeat the new password').fill('yet another passphrase 9');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await expect(page.getByRole('alert')).toBeVisible();
    await expect(page.getByRole('link', { name: 'Ask for a new link' })).toBeVisible();
  });

  noPageErrors();
});
