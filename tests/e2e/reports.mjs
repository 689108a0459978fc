// Email report and traffic alert in a real browser: the owner chooses a
// weekly report and sets an alert in the site settings; both are still
// there after a reload.
//
// Env: CHROMIUM_PATH, APP_URL, SITE_ID, OWNER_EMAIL, OWNER_PASSWORD.
import { launch, env, assert, step, run, signIn } from './lib.mjs';

const APP = env('APP_URL');
const SITE = env('SITE_ID');

run(async () => {
  const { context, close } = await launch();
  const errors = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    step('sign in and open the settings');
    await signIn(page, APP, env('OWNER_EMAIL'), env('OWNER_PASSWORD'));
    await page.goto(`${APP}/sites/${SITE}/settings`);

    step('choose a weekly report');
    const report = page.getByLabel('Send me a report of E2E reports shop');
    await page.waitForFunction(() => !document.querySelector('select[name=report]').disabled);
    await report.selectOption('weekly');
    await page.locator('.report-card').getByText('Saved.').waitFor({ timeout: 10000 });

    step('set an alert');
    await page.getByLabel('Live visitors', { exact: true }).fill('3');
    await page.getByLabel('Webhook (optional, receives a JSON POST)').fill('ftp://nope.example');
    await page.getByRole('button', { name: 'Save alert' }).click();
    await page.locator('.alert-card [role=alert]').getByText('http or https').waitFor({ timeout: 10000 });
    await page.getByLabel('Webhook (optional, receives a JSON POST)').fill('https://hooks.example.com/pl');
    await page.getByRole('button', { name: 'Save alert' }).click();
    await page.locator('.alert-card').getByText('Saved.').waitFor({ timeout: 10000 });

    step('both are kept');
    await page.reload();
    await page.waitForFunction(() => document.querySelector('select[name=report]')?.value === 'weekly', null, { timeout: 10000 });
    await page.locator('.alert-card .btn', { hasText: 'Remove alert' }).waitFor();
    assert((await page.getByLabel('Live visitors', { exact: true }).inputValue()) === '3', 'threshold kept');
    assert((await page.getByLabel('Webhook (optional, receives a JSON POST)').inputValue()) === 'https://hooks.example.com/pl', 'webhook kept');

    step('turn the report off');
    await page.getByLabel('Send me a report of E2E reports shop').selectOption('');
    await page.locator('.report-card').getByText('Saved.').waitFor({ timeout: 10000 });
    assert(errors.length === 0, errors.join('\n'));
  } finally {
    await close();
  }
});
