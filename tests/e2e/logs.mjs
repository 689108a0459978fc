// Opens the PocketBase admin UI's Logs page as a superuser and checks that the
// entry LOG_MESSAGE is listed, then screenshots the page into SCREENSHOTS
// (logs-clickhouse-outage.png).
//
// Env: CHROMIUM_PATH, APP_URL, EMAIL, PASSWORD, LOG_MESSAGE, SCREENSHOTS.
import { launch, env, step, run } from './lib.mjs';
import { join } from 'node:path';

const APP = env('APP_URL');

run(async () => {
  const { context, close } = await launch();
  try {
    const page = await context.newPage();

    step('sign in to the admin UI');
    await page.goto(`${APP}/_/#/login`);
    await page.locator('input[type="email"]').fill(env('EMAIL'));
    await page.locator('input[type="password"]').fill(env('PASSWORD'));
    await page.getByRole('button', { name: 'Login' }).click();
    await page.waitForURL((u) => !u.hash.startsWith('#/login'), { timeout: 15000 });

    step('the Logs page lists the fault');
    await page.goto(`${APP}/_/#/logs`);
    await page.getByText(env('LOG_MESSAGE')).first().waitFor({ timeout: 15000 });
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(env('SCREENSHOTS'), 'logs-clickhouse-outage.png') });
  } finally {
    await close();
  }
});
