// The dashboard in a real browser against the real app: sign in, create a
// site, watch hits arrive live (toast, pin and counter within a second of
// the app accepting the hit), the live lists and the online chart; the
// overview's figures, time series and breakdowns from the analytics API,
// click-to-filter, the period picker and the URL state; the polling fallback
// when SSE is blocked; no access to another user's site; no console errors.
//
// Env: CHROMIUM_PATH, APP_URL, USER_EMAIL, USER_PASSWORD, OTHER_EMAIL,
// OTHER_PASSWORD, SCREENSHOTS (a directory for PNGs).
import { launch, env, assert, waitFor, step, run, collect, DESKTOP_UA, signIn } from './lib.mjs';
import { join } from 'node:path';

const APP = env('APP_URL');
const SHOTS = env('SCREENSHOTS');
const DOMAIN = 'shop.pocketlytics.test';

// The live view must show a new visitor this soon after the hit's 202.
const LIVE_TARGET_MS = 1000;

// Addresses from different countries; the app trusts X-Forwarded-For here.
const IPS = ['81.2.69.160', '89.160.20.112', '216.160.83.56', '175.16.199.10', '2.125.160.216', '67.43.156.1'];

// hit sends one hit as a browser on DOMAIN would and returns the time
// (Date.now(), the same clock as the browser's) at which the app's 202
// arrived. A hit the app drops (answered 202 with a reason) fails the test.
async function hit(site, ip, type, path = '/pricing') {
  const body = { site, type, url: `https://${DOMAIN}${path}`, referrer: 'https://news.ycombinator.com/', title: 'Pricing', w: 1280 };
  return collect(APP, body, { ip, origin: `https://${DOMAIN}` });
}

function watchConsole(page, errors) {
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A failed request is logged by the browser itself; the tests cause
    // some on purpose (blocked SSE, a site without access).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
}

const count = async (page) => Number((await page.locator('.live-count').first().textContent()).replace(/\D/g, '') || 0);
const metric = async (page, key) => (await page.locator(`.metric[data-metric="${key}"] .metric-value`).textContent()).trim();

// armProbe makes the page stamp (Date.now()) the first new visitor toast,
// the first rise of the globe's pin count and of the live counter, from a
// MutationObserver: the stamps are when the DOM changed, not when a poll
// from here noticed it.
async function armProbe(page) {
  await page.evaluate(() => {
    const globe = document.querySelector('.globe');
    const counter = document.querySelector('.live-count');
    const pins = Number(globe.dataset.pins || 0);
    const visitors = Number(counter.textContent.replace(/\D/g, '') || 0);
    const toasts = new Set(document.querySelectorAll('.toast.visitor'));
    const probe = (window.__probe = { toast: 0, pin: 0, counter: 0, text: '' });
    const check = () => {
      const now = Date.now();
      const toast = [...document.querySelectorAll('.toast.visitor')].find((t) => !toasts.has(t));
      if (!probe.toast && toast) [probe.toast, probe.text] = [now, toast.textContent];
      if (!probe.pin && Number(globe.dataset.pins) > pins) probe.pin = now;
      if (!probe.counter && Number(counter.textContent.replace(/\D/g, '') || 0) > visitors) probe.counter = now;
      if (probe.toast && probe.pin && probe.counter) observer.disconnect();
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-pins'] });
  });
}

// measureArrival sends a pageview of a new visitor and returns how long
// after its 202 the toast, the pin and the counter showed it.
async function measureArrival(page, site, ip) {
  await armProbe(page);
  const accepted = await hit(site, ip, 'pageview', '/pricing');
  // Waiting generously here is not the measurement: the stamps are.
  const probe = await waitFor('the toast, the pin and the counter', () => page.evaluate(() => {
    const p = window.__probe;
    return p.toast && p.pin && p.counter ? p : null;
  }), { timeout: 10000 });
  // The push can beat the HTTP answer to this process: that is 0 ms.
  const ms = (t) => Math.max(0, t - accepted);
  return { toast: ms(probe.toast), pin: ms(probe.pin), counter: ms(probe.counter), text: probe.text };
}

run(async () => {
  const { context, close } = await launch();
  const errors = [];
  context.on('page', (p) => watchConsole(p, errors));
  try {
    const page = await context.newPage();

    step('the sign-in page offers sign-up and makes no failing request');
    const failed = [];
    const onResponse = (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    const onFailed = (r) => failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
    page.on('response', onResponse);
    page.on('requestfailed', onFailed);
    await page.goto(`${APP}/login`);
    await page.getByRole('link', { name: 'Create one' }).waitFor();
    await page.waitForLoadState('networkidle');
    page.off('response', onResponse);
    page.off('requestfailed', onFailed);
    assert(failed.length === 0, `the sign-in page made failing requests: ${failed.join('; ')}`);

    step('sign in');
    await signIn(page, APP, env('USER_EMAIL'), env('USER_PASSWORD'));

    step('session survives a reload');
    await page.reload();
    await page.getByRole('heading', { name: 'Sites', exact: true, level: 1 }).waitFor();

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
    await page.locator('.waiting.receiving').waitFor({ timeout: 5000 });

    step(`live view: a new visitor's toast, pin and counter within ${LIVE_TARGET_MS} ms of the 202`);
    await page.goto(`${APP}/sites/${site}/live`);
    await page.locator('.live-pill[data-mode="push"]').waitFor({ timeout: 10000 });
    await waitFor('the first visitor in the counter', async () => (await count(page)) >= 1);
    // The visitor arrived before the page opened: the snapshot lists them.
    await waitFor('the earlier arrival listed on opening', async () => (await page.locator('.arrivals li[data-visitor]').count()) >= 1);
    assert(!(await page.locator('.arrivals', { hasText: 'Nobody has arrived yet' }).count()), 'no "Nobody has arrived yet" beside an arrival');
    // One retry, on a new visitor, absorbs a stall of a loaded machine; the
    // target is the same for both attempts and every figure is logged.
    const visitorIPs = [IPS[1], IPS[3]];
    let arrival;
    let visitors = 1; // one pageview each
    for (let attempt = 1; attempt <= visitorIPs.length; attempt++) {
      arrival = await measureArrival(page, site, visitorIPs[attempt - 1]);
      visitors++;
      const slowest = Math.max(arrival.toast, arrival.pin, arrival.counter);
      console.log(`attempt ${attempt}: toast ${arrival.toast} ms, pin ${arrival.pin} ms, counter ${arrival.counter} ms after the 202`);
      if (slowest <= LIVE_TARGET_MS) break;
      assert(attempt < visitorIPs.length, `the live view took ${slowest} ms (target ${LIVE_TARGET_MS} ms) in ${attempt} attempts`);
    }
    assert(arrival.text.includes('/pricing'), `toast names the entry page: ${arrival.text}`);
    await waitFor(`${visitors} visitors online`, async () => (await count(page)) === visitors);

    step('live view: arrivals, active pages, referrers, online chart');
    await waitFor('the arrivals feed', async () => (await page.locator('.arrivals li[data-visitor]').count()) >= 2);
    await waitFor('/pricing among the active pages', async () => (await page.locator('.live-list', { hasText: 'Active pages' }).textContent()).includes('/pricing'), { timeout: 10000 });
    await waitFor('the referrer', async () => (await page.locator('.live-list', { hasText: 'Live referrers' }).textContent()).includes('news.ycombinator.com'), { timeout: 10000 });
    await page.locator('.online svg').waitFor();
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(SHOTS, 'live.png') });

    step('leave → counter goes down (after the leave grace period)');
    await hit(site, visitorIPs[0], 'leave', '/pricing');
    await waitFor('the counter to go down', async () => (await count(page)) === visitors - 1, { timeout: 15000, interval: 200 });

    step('overview: figures, time series and breakdowns from the analytics API');
    await page.goto(`${APP}/sites/${site}?period=today`);
    const pageviews = visitors;
    // The flusher stores hits within about a second.
    await waitFor(`${pageviews} pageviews`, async () => {
      await page.reload();
      await page.locator('.metric-value').first().waitFor();
      return (await metric(page, 'pageviews')) === String(pageviews);
    }, { timeout: 20000, interval: 1000 });
    assert((await metric(page, 'visitors')) === String(pageviews), `visitors: ${await metric(page, 'visitors')}`);
    // The figures and the chart render apart: on a busy machine the
    // figures can be in while the chart is not drawn yet.
    await waitFor('the time series to be drawn', async () => (await page.locator('.chart svg path.area').count()) === 1, { timeout: 10000 });
    const pagesPanel = page.locator('.panel', { has: page.getByRole('heading', { name: 'Pages', exact: true }) });
    await pagesPanel.locator('.row-filter', { hasText: '/pricing' }).waitFor({ timeout: 10000 });
    await page.locator('.panel', { hasText: 'Locations' }).locator('.row-filter').first().waitFor();
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });

    step('click a page to filter');
    const filtered = page.waitForResponse((r) => r.url().includes('/overview?') && new URL(r.url()).searchParams.get('filters') === '[["page","is",["/pricing"]]]');
    await pagesPanel.locator('.row-filter', { hasText: '/pricing' }).click();
    await filtered;
    await waitFor('the filter in the URL', () => new URL(page.url()).searchParams.get('page') === '/pricing');
    await page.locator('.chip', { hasText: '/pricing' }).waitFor();
    await waitFor('the figures of /pricing', async () => (await metric(page, 'pageviews')) === String(pageviews - 1));

    step('period picker');
    await page.getByLabel('Period', { exact: true }).selectOption('7d');
    await waitFor('the period in the URL', () => new URL(page.url()).searchParams.get('period') === null); // 7d is the default
    await page.getByLabel('Period', { exact: true }).selectOption('30d');
    await waitFor('30d in the URL', () => new URL(page.url()).searchParams.get('period') === '30d');
    await waitFor('the figures of 30 days', async () => (await metric(page, 'pageviews')) === String(pageviews - 1));

    step('state survives a reload');
    await page.reload();
    await page.locator('.chip', { hasText: '/pricing' }).waitFor();
    assert((await page.getByLabel('Period', { exact: true }).inputValue()) === '30d', 'period kept');
    await page.locator('.chip', { hasText: '/pricing' }).click();
    await waitFor('the filter removed', () => !new URL(page.url()).searchParams.has('page'));
    await waitFor('all pageviews again', async () => (await metric(page, 'pageviews')) === String(pageviews));

    step('settings: add a goal');
    const overviewURL = page.url();
    await page.goto(`${APP}/sites/${site}/settings`);
    await page.getByLabel('Goal name').fill('Saw pricing');
    await page.getByLabel('Reached by').selectOption('page');
    await page.getByLabel('Page or event').fill('/pri*');
    await page.getByRole('button', { name: 'Add goal' }).click();
    await page.getByRole('button', { name: 'Delete goal Saw pricing' }).waitFor({ timeout: 10000 });

    step('goals panel: conversion rate, click a goal to filter');
    await page.goto(overviewURL);
    await page.reload();
    const goalsPanel = page.locator('.panel', { has: page.getByRole('heading', { name: 'Goals', exact: true }) });
    const goalRow = goalsPanel.locator('tr', { hasText: 'Saw pricing' });
    await goalRow.waitFor({ timeout: 10000 });
    const rate = `${Math.round(((pageviews - 1) / pageviews) * 1000) / 10}%`;
    assert((await goalRow.locator('.conversion').textContent()) === rate, `conversion: ${await goalRow.locator('.conversion').textContent()}, want ${rate}`);
    await goalRow.locator('.row-filter').click();
    await waitFor('the goal filter in the URL', () => new URL(page.url()).searchParams.get('goal') === 'Saw pricing');
    await waitFor('the figures of the converting visits', async () => (await metric(page, 'visitors')) === String(pageviews - 1));
    await page.locator('.chip', { hasText: 'Saw pricing' }).click();
    await waitFor('the goal filter removed', () => !new URL(page.url()).searchParams.has('goal'));

    step('funnels: add one in the settings, its chart on the overview');
    await page.goto(`${APP}/sites/${site}/settings`);
    await page.getByLabel('Funnel name').fill('Pricing to signup');
    await page.getByLabel(/Steps, one a line/).fill('/*\nevent: Signup');
    await page.getByRole('button', { name: 'Add funnel' }).click();
    await page.getByRole('button', { name: 'Delete funnel Pricing to signup' }).waitFor({ timeout: 10000 });
    await page.goto(overviewURL);
    const funnelSteps = page.locator('.funnel-steps li');
    await funnelSteps.nth(1).waitFor({ timeout: 10000 });
    assert((await funnelSteps.nth(0).textContent()).includes(`${pageviews} visitors`), `step 1: ${await funnelSteps.nth(0).textContent()}`);
    assert((await funnelSteps.nth(1).locator('.funnel-rate').textContent()) === '0%', `step 2: ${await funnelSteps.nth(1).textContent()}`);
    await page.goto(`${APP}/sites/${site}/settings`);
    await page.getByRole('button', { name: 'Delete funnel Pricing to signup' }).click();
    await page.locator('.funnels', { hasText: 'No funnels yet.' }).waitFor({ timeout: 10000 });

    step('settings: delete the goal');
    await page.goto(`${APP}/sites/${site}/settings`);
    await page.getByRole('button', { name: 'Delete goal Saw pricing' }).click();
    await page.locator('.goals', { hasText: 'No goals yet.' }).waitFor({ timeout: 10000 });
    await page.goto(overviewURL);

    step('SSE blocked → polling, data still updates');
    const blocked = await context.newPage();
    await blocked.route('**/api/realtime**', (route) => route.abort());
    await blocked.goto(`${APP}/sites/${site}/live`);
    await blocked.locator('.live-pill[data-mode="polling"] .live-mode').waitFor({ timeout: 10000 });
    assert(await blocked.locator('.live-mode').first().isVisible(), 'polling indicator shown');
    assert(!(await blocked.locator('[role="alert"]:visible').count()), 'no error shown for the fallback');
    const polled = await count(blocked);
    await hit(site, IPS[2], 'pageview', '/docs');
    await waitFor('the polled counter to go up', async () => (await count(blocked)) > polled, { timeout: 35000, interval: 250 });
    await blocked.locator('.arrivals li', { hasText: '/docs' }).waitFor();
    await blocked.close();

    step('another user cannot open the site');
    const second = await launch();
    try {
      const otherPage = await second.context.newPage();
      watchConsole(otherPage, errors);
      await signIn(otherPage, APP, env('OTHER_EMAIL'), env('OTHER_PASSWORD'));
      await otherPage.goto(`${APP}/sites/${site}`);
      await otherPage.getByText('does not exist or you have no access').waitFor();
      assert(!(await otherPage.locator('.metric-value').count()), 'no figures for a foreign site');
      const statuses = await otherPage.evaluate(async (id) => {
        const auth = { Authorization: JSON.parse(localStorage.getItem('pocketbase_auth')).token };
        const get = async (path) => (await fetch(`/api/analytics/sites/${id}/${path}`, { headers: auth })).status;
        return { live: await get('live'), overview: await get('overview'), breakdown: await get('breakdown/page') };
      }, site);
      for (const [route, status] of Object.entries(statuses)) assert(status === 404, `${route} of a foreign site answered ${status}`);
    } finally {
      await second.close();
    }

    step('no console errors');
    assert(!errors.length, errors.join('\n'));
  } finally {
    await close();
  }
});
