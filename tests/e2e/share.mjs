// Sharing in a real browser: the owner makes a share link with the live
// view and a funnel in the settings; a signed-out browser opens it
// (overview with the pages panel's time on page and scroll depth and the
// funnel chart; live, a hit arriving over SSE), then the owner revokes it
// while it is open: nothing more arrives and a reload says the link is
// gone. A password link asks for its password; the public switch opens
// /share/{siteId}; an API key made in the settings reads the site until it
// is deleted; the CSV and export buttons download files.
//
// Env: CHROMIUM_PATH, APP_URL, SITE_ID, USER_EMAIL, USER_PASSWORD.
import { readFileSync } from 'node:fs';
import { launch, env, assert, waitFor, step, run, collect, DESKTOP_UA, signIn } from './lib.mjs';

const APP = env('APP_URL');
const SITE = env('SITE_ID');
const DOMAIN = 'shop.pocketlytics.test';

let ipSeq = 10;
// hit sends a hit (a pageview unless type says otherwise) as a browser on
// DOMAIN would, from a new address unless ip names one; the rest of the
// options (e, s) go into the body.
async function hit(path = '/pricing', { ip = `81.2.69.${ipSeq++}`, type = 'pageview', ...extra } = {}) {
  const body = { site: SITE, type, url: `https://${DOMAIN}${path}`, referrer: '', title: 'Pricing', w: 1280, ...extra };
  await collect(APP, body, { ip, origin: `https://${DOMAIN}` });
  return path;
}

function watchConsole(page, errors) {
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
}

const arrivalsWith = (page, path) => page.locator('.arrivals li', { hasText: path }).count();

// engagementCells reads the time on page and scroll depth cells of a page's
// row in the pages panel.
async function engagementCells(page, path) {
  const row = page.locator('table.breakdown tr', { has: page.getByRole('button', { name: path, exact: true }) });
  await row.waitFor({ timeout: 10000 });
  return [await row.locator('.time-on-page').textContent(), await row.locator('.scroll-depth').textContent()];
}

// checkPanels asserts the engagement columns of the pages panel and the
// funnel chart on an open overview.
async function checkPanels(page) {
  await page.getByRole('columnheader', { name: 'Time on page' }).waitFor({ timeout: 10000 });
  await page.getByRole('columnheader', { name: 'Scroll depth' }).waitFor();
  const engaged = await engagementCells(page, '/engaged');
  assert(engaged[0] === '1m 12s' && engaged[1] === '64%', `/engaged: time on page ${engaged[0]}, scroll depth ${engaged[1]}`);
  const home = await engagementCells(page, '/');
  assert(home[0] === '–' && home[1] === '–', `/ without engagement: ${home}`);
  const funnel = page.locator('.funnel');
  await funnel.getByRole('heading', { name: 'Funnel' }).waitFor({ timeout: 10000 });
  assert((await funnel.getByLabel('Funnel').locator('option:checked').textContent()) === 'Home to engaged', 'the funnel picked');
  const steps = funnel.locator('.funnel-steps li');
  await steps.nth(1).waitFor({ timeout: 10000 });
  const first = await steps.nth(0).textContent();
  const second = await steps.nth(1).textContent();
  assert(first.includes('/') && first.includes('1 visitors') && second.includes('/engaged'), `funnel steps: ${first} | ${second}`);
}

run(async () => {
  const owner = await launch();
  const guest = await launch();
  const errors = [];
  try {
    const page = owner.context.pages()[0] || (await owner.context.newPage());
    watchConsole(page, errors);
    step('owner signs in and opens the settings');
    await signIn(page, APP, env('USER_EMAIL'), env('USER_PASSWORD'));
    await page.goto(`${APP}/sites/${SITE}/settings`);

    step('create a share link with the live view');
    await page.getByLabel('Label').fill('Client');
    await page.getByLabel('Include the live view').check();
    await page.getByRole('button', { name: 'Create link' }).click();
    const link = await page.locator('.shares .share-link').first().textContent({ timeout: 5000 });
    assert(/\/share\/[A-Za-z0-9]{40}$/.test(link), `share link ${link}`);
    await hit('/');
    const token = link.split('/').pop();
    // The hit is in the figures once the flusher stored it.
    await waitFor('the hit in the figures read with the share token', async () => {
      const r = await fetch(`${APP}/api/analytics/sites/${SITE}/overview?period=today&share=${token}`);
      return r.ok && (await r.json()).current.visitors >= 1;
    }, { timeout: 10000, interval: 200 });

    step('a page read for 72 s and scrolled to 64 %: its pageview, a ping and the leave');
    const reader = '81.2.69.200';
    await hit('/engaged', { ip: reader });
    await hit('/engaged', { ip: reader, type: 'ping', e: 40000, s: 50 });
    await hit('/engaged', { ip: reader, type: 'leave', e: 32000, s: 64 });
    await waitFor('the engagement in the pages breakdown', async () => {
      const r = await fetch(`${APP}/api/analytics/sites/${SITE}/breakdown/page?period=today&share=${token}`);
      return r.ok && (await r.json()).items.some((i) => i.value === '/engaged' && i.timeOnPage === 72);
    }, { timeout: 10000, interval: 200 });

    step('a funnel made in the settings; the owner sees it and the engagement columns');
    await page.getByLabel('Funnel name').fill('Home to engaged');
    await page.getByLabel(/Steps, one a line/).fill('/\n/engaged');
    await page.getByRole('button', { name: 'Add funnel' }).click();
    await page.getByRole('button', { name: 'Delete funnel Home to engaged' }).waitFor({ timeout: 10000 });
    await page.goto(`${APP}/sites/${SITE}`);
    await checkPanels(page);
    await page.goto(`${APP}/sites/${SITE}/settings`);

    step('a signed-out browser opens the link: figures, engagement columns, the funnel');
    const g = guest.context.pages()[0] || (await guest.context.newPage());
    watchConsole(g, errors);
    await g.goto(link);
    await g.getByRole('heading', { name: 'E2E shared shop', level: 1 }).waitFor();
    assert(!(await g.getByRole('link', { name: 'Settings' }).count()), 'the share page offers settings');
    await waitFor('visitors in the overview', async () => Number((await g.locator('.metric[data-metric="visitors"] .metric-value').textContent()).replace(/\D/g, '')) >= 1, { timeout: 10000 });
    assert(!(await g.locator('.snippet').count()), 'the share page shows the tracker snippet');
    await checkPanels(g);

    step('live view over SSE');
    await g.getByRole('link', { name: 'Live', exact: true }).click();
    await g.locator('.live-mode-line[data-mode="push"]').waitFor({ timeout: 10000 });
    const p1 = await hit('/live-one');
    await waitFor('the arrival on the share page', async () => (await arrivalsWith(g, p1)) > 0, { timeout: 5000 });

    step('the owner revokes the link while it is open');
    const watcher = await owner.context.newPage();
    await watcher.goto(`${APP}/sites/${SITE}/live`);
    await watcher.locator('.live-mode-line[data-mode="push"]').waitFor({ timeout: 10000 });
    await page.getByRole('button', { name: 'Revoke Client' }).click();
    await page.locator('.shares li', { hasText: 'No share links yet.' }).waitFor();
    const p2 = await hit('/after-revoke');
    // The owner's live view gets it over push; the revoked page, which
    // would have got it at the same time, must not.
    await waitFor('the arrival on the owner page', async () => (await arrivalsWith(watcher, p2)) > 0, { timeout: 5000 });
    await g.waitForTimeout(500);
    assert((await arrivalsWith(g, p2)) === 0, 'the revoked share page still receives arrivals');
    await g.reload();
    await g.getByText('This link does not exist, expired or was revoked.').waitFor();

    step('a link with a password');
    await page.getByLabel('Label').fill('Secret');
    await page.getByLabel('Password (optional)').fill('open-sesame-1');
    await page.getByRole('button', { name: 'Create link' }).click();
    await page.locator('.shares li', { hasText: 'Secret' }).waitFor();
    const secret = await page.locator('.shares li', { hasText: 'Secret' }).locator('.share-link').textContent();
    await g.goto(secret);
    await g.getByLabel('This dashboard is protected by a password').fill('wrong');
    await g.getByRole('button', { name: 'Open' }).click();
    await g.getByText('The password is wrong.').waitFor();
    await g.getByLabel('This dashboard is protected by a password').fill('open-sesame-1');
    await g.getByRole('button', { name: 'Open' }).click();
    await g.getByRole('heading', { name: 'E2E shared shop', level: 1 }).waitFor();
    await waitFor('figures behind the password', async () => Number((await g.locator('.metric[data-metric="visitors"] .metric-value').textContent()).replace(/\D/g, '')) >= 1, { timeout: 10000 });
    assert(!(await g.getByRole('link', { name: 'Live', exact: true }).count()), 'a link without the live flag offers the live view');

    step('CSV and export downloads from the share page');
    const [csv] = await Promise.all([g.waitForEvent('download'), g.getByRole('button', { name: 'Download this breakdown as CSV' }).first().click()]);
    const csvText = readFileSync(await csv.path(), 'utf8');
    assert(csv.suggestedFilename() === 'page.csv' && csvText.startsWith('value,visitors,') && csvText.includes('/live-one,'), `page.csv: ${csvText}`);
    const [zip] = await Promise.all([g.waitForEvent('download'), g.getByRole('button', { name: /Export all breakdowns/ }).click()]);
    const zipBytes = readFileSync(await zip.path());
    assert(zip.suggestedFilename().endsWith('.zip') && zipBytes.subarray(0, 2).toString() === 'PK', `export ${zip.suggestedFilename()}`);

    step('the public switch');
    const publicURL = `${APP}/share/${SITE}`;
    await g.goto(publicURL);
    await g.getByText('This link does not exist, expired or was revoked.').waitFor();
    await page.getByLabel(/Anyone with the link may see/).check();
    await page.locator('.public-link').waitFor();
    await g.goto(publicURL);
    await g.getByRole('heading', { name: 'E2E shared shop', level: 1 }).waitFor();
    await page.getByLabel(/Anyone with the link may see/).uncheck();
    await page.locator('.public-link').waitFor({ state: 'detached' });
    await g.reload();
    await g.getByText('This link does not exist, expired or was revoked.').waitFor();

    step('an API key, shown once, reads this site until deleted');
    await page.getByPlaceholder('e.g. Weekly export script').fill('Export');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.getByLabel('New API key').textContent({ timeout: 5000 })).trim();
    assert(key.startsWith('plk_'), `key ${key}`);
    const withKey = () => fetch(`${APP}/api/analytics/sites/${SITE}/overview?period=today`, { headers: { Authorization: `Bearer ${key}` } });
    assert((await withKey()).status === 200, 'the key does not read its site');
    await page.locator('.api-keys li', { hasText: 'Export' }).waitFor();
    await page.reload();
    await page.locator('.api-keys li', { hasText: 'Export' }).waitFor();
    assert(!(await page.getByText(key).count()), 'the key is shown again after a reload');
    await page.getByRole('button', { name: 'Delete key Export' }).click();
    await page.locator('.api-keys li', { hasText: 'No API keys for this site.' }).waitFor();
    assert((await withKey()).status === 404, 'a deleted key still reads the site');

    assert(errors.length === 0, `console errors:\n${errors.join('\n')}`);
  } finally {
    await guest.close();
    await owner.close();
  }
});
