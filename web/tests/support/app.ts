// Shared steps of the browser tests: unique users, a verified account made through the
// API and the emailed link, signing in through the page, and checks every page passes.
import { expect, type APIRequestContext, type Page } from '@playwright/test';
import { waitForLink } from './outbox';

export const PASSWORD = 'correct horse battery 42';

let counter = 0;
/** An address no earlier run used. */
export function uniqueEmail(tag: string): string {
  counter += 1;
  return `${tag}.${Date.now().toString(36)}${counter}@example.com`;
}

export interface User {
  email: string;
  password: string;
  name: string;
  accountName: string;
}

/** Registers through the API and verifies by the emailed link (for tests about later pages). */
export async function verifiedUser(request: APIRequestContext, tag = 'user'): Promise<User> {
  const u: User = { email: uniqueEmail(tag), password: PASSWORD, name: `Test ${tag}`, accountName: `Acme ${tag}` };
  const r = await request.post('/v1/auth/register', {
    data: { email: u.email, password: u.password, name: u.name, account_name: u.accountName },
  });
  expect(r.status(), await r.text()).toBe(201);
  const { link } = await waitForLink({ to: u.email, path: '/verify' });
  const token = new URL(link).searchParams.get('token');
  const v = await request.post('/v1/auth/verify', { data: { token } });
  expect(v.status(), await v.text()).toBe(200);
  return u;
}

/** Signs in through the sign-in page and waits for the helpers page. */
export async function signIn(page: Page, email: string, password: string) {
  await page.goto('/signin');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Helpers', level: 1 })).toBeVisible();
}

/** Every visible form control has an accessible name from a label or ARIA. */
export async function expectAllLabelled(page: Page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('input, select, textarea, [contenteditable="true"]')]
      .filter((e) => e.offsetParent !== null && (e as HTMLInputElement).type !== 'hidden')
      .filter((e) => {
        const labels = (e as HTMLInputElement).labels;
        return !(labels && labels.length > 0) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby');
      })
      .map((e) => e.outerHTML.slice(0, 160)),
  );
  expect(unlabelled, 'form controls without a label').toEqual([]);
}

/** Nothing is wider than the viewport (no sideways scrolling). */
export async function expectNoHorizontalScroll(page: Page) {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  expect(scroll, 'page width').toBeLessThanOrEqual(width);
}

/** Fails the test on an uncaught page error (a blank page in the making). */
export function failOnPageErrors(page: Page) {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return () => expect(errors, 'uncaught errors in the page').toEqual([]);
}
