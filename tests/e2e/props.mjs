// Custom event properties in the dashboard: a breakdown of an event by a
// property key, and a click on a value that filters the whole view by it.
//
// Env: CHROMIUM_PATH, APP_URL, USER_EMAIL, USER_PASSWORD, SITE_ID.
import { launch, env, assert, waitFor, step, run, collect, DESKTOP_UA, signIn } from './lib.mjs';

const APP = env('APP_URL');
const SITE = env('SITE_ID');
const DOMAIN = 'shop.pocketlytics.test';

// send posts one hit as a browser with the given User-Agent (one visitor
// per agent) would.
async function send(ua, body) {
  await collect(APP, { site: SITE, url: `https://${DOMAIN}/pricing`, w: 1280, ...body }, { ua });
}

run(async () => {
  step('three visitors sign up: two on plan pro, one on free');
  const plans = ['pro', 'pro', 'free'];
  for (const [i, plan] of plans.entries()) {
    const ua = DESKTOP_UA.replace('Chrome/138.0.0.0', `Chrome/138.0.0.${i + 1}`);
    await send(ua, { type: 'pageview' });
    await send(ua, { type: 'event', name: 'Signup', props: { plan } });
  }

  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));

    step('sign in');
    await signIn(page, APP, env('USER_EMAIL'), env('USER_PASSWORD'));

    step('filter on the event, then break it down by a property key');
    await page.goto(`${APP}/sites/${SITE}?period=today&event_name=Signup`);
    const panel = page.locator('.props-panel');
    await panel.getByRole('heading', { name: 'Properties of “Signup”' }).waitFor();
    // The flusher writes in batches: ask again until the events are stored.
    await waitFor('the plan breakdown', async () => {
      await panel.getByLabel('Property').fill('plan');
      await panel.getByRole('button', { name: 'Show' }).click();
      return (await panel.locator('tbody tr').count()) === 2;
    }, { timeout: 15000, interval: 500 });
    const rows = await panel.locator('tbody tr').allInnerTexts();
    assert(/^pro\s+2\s+2$/.test(rows[0].trim()) && /^free\s+1\s+1$/.test(rows[1].trim()), `rows ${JSON.stringify(rows)}`);

    step('a value filters the view');
    await panel.getByRole('button', { name: 'pro' }).click();
    await page.waitForURL(/event_prop%3Aplan=pro|event_prop:plan=pro/);
    await page.getByRole('button', { name: 'Remove filter Property plan is pro' }).waitFor();
    await waitFor('the visitors of plan pro', async () =>
      (await page.locator('.metric[data-metric="visitors"] .metric-value').textContent()).trim() === '2');

    step('the filter survives a reload and can be removed');
    await page.reload();
    await page.getByRole('button', { name: 'Remove filter Property plan is pro' }).click();
    await waitFor('the filter gone from the URL', () => !/event_prop/.test(page.url()));
    await waitFor('the visitors of the event again', async () =>
      (await page.locator('.metric[data-metric="visitors"] .metric-value').textContent()).trim() === '3');
    assert(!errors.length, `page errors: ${errors.join('; ')}`);
  } finally {
    await close();
  }
});
