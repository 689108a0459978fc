// The dashboard in a real browser against the real app: sign in, create a
// site, watch a hit arrive live (toast, pin, counter) and leave, fall back
// to polling when SSE is blocked, refuse another user's site, keep its state
// in the URL, and log no errors in the console.
//
// Env: CHROMIUM_PATH, APP_URL, USER_EMAIL, USER_PASSWORD, OTHER_EMAIL,
// OTHER_PASSWORD, SCREENSHOTS (a directory for PNGs).
import { launch, env, assert, waitFor, step, run, DESKTOP_UA } from './lib.mjs';
import { join } from 'node:path';

const APP = env('APP_URL');
const SHOTS = env('SCREENSHOTS');
const DOMAIN = 'shop.pocketlytics.test';

// Addresses from different countries; the app trusts X-Forwarded-For here.
const IPS = ['81.2.69.160', '89.160.20.112', '216.160.83.56', '175.16.199.10', '2.125.160.216'];

async function hit(site, ip, type, path = '/pricing') {
  const res = await fetch(`${APP}/api/collect`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain', 'User-Agent': DESKTOP_UA, 'X-Forwarded-For': ip, Origin: `https://${DOMAIN}` },
    body: JSON.stringify({ site, type, url: `https://${DOMAIN}${path}`, referrer: 'https://news.ycombinator.com/', title: 'Pricing', w: 1280 }),
  });
  assert(res.status === 202, `${type} hit answered ${res.status}: ${await res.text()}`);
}

function watchConsole(page, errors) {
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A failed request is logged by the browser itself; the tests cause
    // some on purpose (blocked SSE, a site without access).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
}

async function signIn(page, email, password) {
  await page.goto(`${APP}/`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Sites' }).waitFor();
}

const count = async (page) => Number((await page.locator('.live-count').first().textContent()).replace(/\D/g, '') || 0);

run(async () => {
  const { context, close } = await launch();
  const errors = [];
  context.on('page', (p) => watchConsole(p, errors));
  try {
    const page = await context.newPage();

    step('sign in');
    await signIn(page, env('USER_EMAIL'), env('USER_PASSWORD'));

    step('session survives a reload');
    await page.reload();
    await page.getByRole('heading', { name: 'Sites' }).waitFor();

    step('create a site');
    await page.getByRole('link', { name: /New site/ }).first().click();
    await page.getByLabel('Name').fill('E2E shop');
    await page.getByLabel('Domains').fill(DOMAIN);
    await page.getByRole('button', { name: 'Create site' }).click();
    await page.locator('.snippet').waitFor();
    const site = page.url().match(/\/sites\/([^/]+)\/settings/)[1];
    const snippet = await page.locator('.snippet pre').textContent();
    assert(snippet.includes(`data-site="${site}"`) && snippet.includes(`${APP}/t.js`), `snippet: ${snippet}`);
    assert((await page.locator('.waiting').textContent()).includes('Waiting'), 'waiting for the first hit');

    step('first hit turns the snippet green');
    await page.locator('.live-pill[data-mode="push"]').waitFor({ timeout: 10000 });
    await hit(site, IPS[0], 'pageview', '/');
    await page.locator('.waiting.receiving').waitFor({ timeout: 3000 });

    step('live view: arrival → toast, pin and counter within a second');
    await page.goto(`${APP}/sites/${site}/live`);
    await page.locator('.live-pill[data-mode="push"]').waitFor({ timeout: 10000 });
    await waitFor('the first visitor in the counter', async () => (await count(page)) >= 1);
    const before = await count(page);
    const pinsBefore = Number((await page.locator('.globe').getAttribute('data-pins')) || 0);
    const sent = Date.now();
    await hit(site, IPS[1], 'pageview', '/pricing');
    await page.locator('.toast.visitor').first().waitFor({ timeout: 1000 });
    const toastMs = Date.now() - sent;
    await waitFor('the counter to go up', async () => (await count(page)) === before + 1, { timeout: 1000 });
    await waitFor('a new pin', async () => Number(await page.locator('.globe').getAttribute('data-pins')) > pinsBefore, { timeout: 1000 });
    console.log(`toast after ${toastMs} ms`);
    const toast = await page.locator('.toast.visitor').first().textContent();
    assert(toast.includes('/pricing'), `toast names the entry page: ${toast}`);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(SHOTS, 'live.png') });

    step('leave → counter goes down');
    await hit(site, IPS[1], 'leave', '/pricing');
    await waitFor('the counter to go down', async () => (await count(page)) === before, { timeout: 3000 });

    step('overview keeps its state in the URL');
    await page.goto(`${APP}/sites/${site}?period=today`);
    await page.locator('.metric-value').first().waitFor();
    await page.locator('.breakdown .row-filter').first().waitFor({ timeout: 10000 });
    await page.locator('.breakdown .row-filter').first().click();
    await waitFor('a filter in the URL', () => new URL(page.url()).searchParams.has('page'));
    await page.reload();
    await page.locator('.chip').first().waitFor();
    assert(new URL(page.url()).searchParams.get('period') === 'today', 'period kept');
    await page.goto(`${APP}/sites/${site}?period=today`);
    await page.locator('.breakdown .row-filter').first().waitFor({ timeout: 10000 });
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });

    step('SSE blocked → polling, data still updates');
    const blocked = await context.newPage();
    await blocked.route('**/api/realtime**', (route) => route.abort());
    await blocked.goto(`${APP}/sites/${site}/live`);
    await blocked.locator('.live-pill[data-mode="polling"] .live-mode').waitFor({ timeout: 10000 });
    assert(await blocked.locator('.live-mode').first().isVisible(), 'polling indicator shown');
    assert(!(await blocked.locator('[role="alert"]:visible').count()), 'no error shown for the fallback');
    const polled = await count(blocked);
    await hit(site, IPS[2], 'pageview', '/docs');
    await waitFor('the polled counter to go up', async () => (await count(blocked)) > polled, { timeout: 20000, interval: 250 });
    await blocked.close();

    step('another user cannot open the site');
    const second = await launch();
    try {
      const otherPage = await second.context.newPage();
      watchConsole(otherPage, errors);
      await signIn(otherPage, env('OTHER_EMAIL'), env('OTHER_PASSWORD'));
      await otherPage.goto(`${APP}/sites/${site}`);
      await otherPage.getByText('does not exist or you have no access').waitFor();
      assert(!(await otherPage.locator('.metric-value').count()), 'no figures for a foreign site');
      const status = await otherPage.evaluate(
        async (id) =>
          (await fetch(`/api/analytics/sites/${id}/live`, { headers: { Authorization: JSON.parse(localStorage.getItem('pocketbase_auth')).token } })).status,
        site,
      );
      assert(status === 403 || status === 404, `live API for a foreign site answered ${status}`);
    } finally {
      await second.close();
    }

    step('no console errors');
    assert(!errors.length, errors.join('\n'));
  } finally {
    await close();
  }
});
