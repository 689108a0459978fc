// Live conversions: a goal-converting hit sent through /api/collect raises a
// toast with the goal, place, referrer and revenue, joins the arrivals feed,
// and the goal's count for today goes up by one, from the store's figure;
// with SSE blocked the polled count follows the store.
//
// Env: CHROMIUM_PATH, APP_URL, USER_EMAIL, USER_PASSWORD, SITE_ID.
import { launch, env, assert, waitFor, step, run, collect, DESKTOP_UA, signIn } from './lib.mjs';

const APP = env('APP_URL');
const SITE = env('SITE_ID');
const DOMAIN = 'shop.pocketlytics.test';

async function send(ua, body) {
  const hit = { site: SITE, url: `https://${DOMAIN}/pricing`, referrer: 'https://news.ycombinator.com/', w: 1280, ...body };
  await collect(APP, hit, { ua, ip: '81.2.69.160', origin: `https://${DOMAIN}` });
}

const signupCount = async (page) => {
  const row = page.locator('.live-goals li[data-goal="Signup"] .num');
  return (await row.count()) ? Number((await row.textContent()).replace(/\D/g, '')) : 0;
};

run(async () => {
  step('an earlier signup today, in the store');
  const first = DESKTOP_UA.replace('Chrome/138.0.0.0', 'Chrome/138.0.0.1');
  await send(first, { type: 'pageview' });
  await send(first, { type: 'event', name: 'signup', props: { plan: 'pro' } });

  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));

    step('sign in and open the live view');
    await signIn(page, APP, env('USER_EMAIL'), env('USER_PASSWORD'));
    // The flusher writes in batches: reload until the store has the signup.
    await waitFor('the store’s signup count', async () => {
      await page.goto(`${APP}/sites/${SITE}/live`);
      await page.locator('.live-pill[data-mode="push"]').waitFor({ timeout: 10000 });
      await page.locator('.live-goals h2').waitFor();
      await page.waitForTimeout(300);
      return (await signupCount(page)) === 1;
    }, { timeout: 20000, interval: 500 });

    step('a new visitor converts with revenue: toast, feed line, count 1 → 2');
    const second = DESKTOP_UA.replace('Chrome/138.0.0.0', 'Chrome/138.0.0.2');
    await send(second, { type: 'pageview' });
    const markup = '<img src=x onerror="window.__injected=1">';
    await send(second, { type: 'event', name: markup });
    await send(second, { type: 'event', name: 'signup', props: { plan: 'pro' }, revenue: { amount: 49.9, currency: 'EUR' } });
    const toast = page.locator('.toast.conversion').first();
    await toast.waitFor({ timeout: 5000 });
    const text = await toast.textContent();
    assert(text.includes('Signup · ') && text.includes('from news.ycombinator.com') && text.includes('€49.90'), `toast ${JSON.stringify(text)}`);
    await waitFor('the signup count at 2', async () => (await signupCount(page)) === 2, { timeout: 5000 });
    const feedText = await page.locator('.arrivals li.conversion').first().textContent();
    assert(feedText.includes('Signup') && feedText.includes('€49.90'), `feed ${JSON.stringify(feedText)}`);
    const events = await page.locator('.arrivals li.event').allTextContents();
    assert(events.some((t) => t.includes(markup)), `the custom event, as text, in the feed: ${JSON.stringify(events)}`);
    assert(!(await page.locator('.arrivals img').count()) && !(await page.evaluate(() => window.__injected)), 'a hit rendered as markup');

    step('a resync from the store (flushed or not) does not count it twice');
    await page.waitForTimeout(5000); // the feed resyncs 4 s after a burst
    assert((await signupCount(page)) === 2, `count after the resync: ${await signupCount(page)}`);

    step('SSE blocked → polling: the store’s figure, then the next conversion at the next poll');
    const blocked = await context.newPage();
    blocked.on('pageerror', (e) => errors.push(e.message));
    await blocked.route('**/api/realtime**', (route) => route.abort());
    await blocked.goto(`${APP}/sites/${SITE}/live`);
    await blocked.locator('.live-pill[data-mode="polling"]').waitFor({ timeout: 10000 });
    await waitFor('the stored count at 2', async () => (await signupCount(blocked)) === 2, { timeout: 20000, interval: 500 });
    const third = DESKTOP_UA.replace('Chrome/138.0.0.0', 'Chrome/138.0.0.3');
    await send(third, { type: 'event', name: 'signup', props: { plan: 'pro' } });
    await waitFor('the polled count at 3', async () => (await signupCount(blocked)) === 3, { timeout: 40000, interval: 500 });
    await waitFor('the pushed count at 3', async () => (await signupCount(page)) === 3, { timeout: 5000 });
    assert(errors.length === 0, `page errors: ${errors.join('; ')}`);
  } finally {
    await close();
  }
});
