// The dashboard under /analytics/ of a host app (examples/existing-app):
// deep links load, the app's links and navigation stay under its path, a
// site is created through the renamed-or-not collection by its id, and the
// host's page at / is untouched. No console errors.
//
// Env: CHROMIUM_PATH, APP_URL, USER_EMAIL, USER_PASSWORD.
import { launch, env, assert, waitFor, step, run } from './lib.mjs';

const APP = env('APP_URL');

run(async () => {
  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
    });

    step('a deep link under /analytics/ asks to sign in, under /analytics/');
    await page.goto(`${APP}/analytics/sites/new`);
    await page.waitForURL(/\/analytics\/login\?next=%2Fsites%2Fnew$/);
    await page.getByLabel('E-mail').fill(env('USER_EMAIL'));
    await page.getByLabel('Password').fill(env('USER_PASSWORD'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${APP}/analytics/sites/new`);

    step('links carry the path');
    const brand = await page.locator('a.brand').getAttribute('href');
    assert(brand === '/analytics/', `brand link ${brand}`);

    step('create a site');
    await page.getByLabel('Name').fill('Host site');
    await page.getByLabel('Domains').fill('host.pocketlytics.test');
    await page.getByRole('button', { name: 'Create site' }).click();
    await page.waitForURL(/\/analytics\/sites\/[a-z0-9]+\/settings\?created=1$/);

    step('the list of sites, through the brand link');
    await page.locator('a.brand').click();
    await page.waitForURL(`${APP}/analytics/`);
    await waitFor('the new site listed', async () => (await page.getByRole('link', { name: 'Host site' }).count()) === 1);

    step("the host's page is the host's");
    await page.goto(`${APP}/`);
    assert((await page.textContent('h1')) === "The host app's own page", 'host page replaced');

    assert(errors.length === 0, errors.join('\n'));
  } finally {
    await close();
  }
});
