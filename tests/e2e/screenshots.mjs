// Takes the README's screenshots (docs/screenshots/overview.png, live.png)
// of a running app that `pocketlytics demo` is filling with visitors. Not a
// test: run it by hand while the demo runs, as docs/screenshots/README.md shows.
//
// Env: CHROMIUM_PATH, APP_URL, EMAIL, PASSWORD (a superuser), SITE_ID,
// SCREENSHOTS (the output directory), PERIOD (of the overview, default today).
import { launch, env, waitFor, step, run } from './lib.mjs';
import { join } from 'node:path';

const APP = env('APP_URL');
const SITE = env('SITE_ID');
const SHOTS = env('SCREENSHOTS');
const PERIOD = process.env.PERIOD || 'today';

run(async () => {
  const { context, close } = await launch();
  try {
    const page = await context.newPage();

    step('sign in as a superuser');
    await page.goto(`${APP}/login`);
    await page.getByLabel('E-mail').fill(env('EMAIL'));
    await page.getByLabel('Password').fill(env('PASSWORD'));
    await page.getByLabel(/superuser/).check();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sites', exact: true, level: 1 }).waitFor();

    step('overview');
    await page.goto(`${APP}/sites/${SITE}?period=${PERIOD}`);
    await page.locator('.chart svg path.area').waitFor();
    for (const panel of await page.locator('.panel').all()) {
      await waitFor('a filled panel', async () => !(await panel.textContent()).includes('Loading'), { timeout: 10000 });
    }
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });

    step('live view');
    await page.goto(`${APP}/sites/${SITE}/live`);
    await page.locator('.live-pill[data-mode="push"]').waitFor({ timeout: 10000 });
    await waitFor('pins on the globe', async () => Number(await page.locator('.globe').getAttribute('data-pins')) >= 5, { timeout: 60000 });
    await page.locator('.toast.visitor').first().waitFor({ timeout: 60000 });
    // What a screen shows: the globe, the counter, the arrivals and the
    // toasts in their corner, with the lists below starting.
    await page.setViewportSize({ width: 1280, height: 1000 });
    await page.locator('.toast.visitor').first().waitFor({ timeout: 60000 });
    await page.waitForTimeout(1000);
    await page.screenshot({ path: join(SHOTS, 'live.png') });
  } finally {
    await close();
  }
});
