// Filters and segments in the dashboard: the picker (is, is not, contains,
// several values), chips kept in the URL across a reload and history, a
// saved segment applied and deleted, the previous period's overlay.
//
// Env: CHROMIUM_PATH, APP_URL, USER_EMAIL, USER_PASSWORD, SITE_ID.
import { launch, env, assert, waitFor, step, run, collect, DESKTOP_UA, signIn } from './lib.mjs';

const APP = env('APP_URL');
const SITE = env('SITE_ID');
const DOMAIN = 'shop.pocketlytics.test';

// send posts a pageview as a browser with the given User-Agent (one
// visitor per agent) would.
async function send(ua, path) {
  await collect(APP, { site: SITE, url: `https://${DOMAIN}${path}`, w: 1280, type: 'pageview' }, { ua });
}

run(async () => {
  step('three visitors: /pricing, /blog/a, /blog/b');
  for (const [i, path] of ['/pricing', '/blog/a', '/blog/b'].entries()) {
    await send(DESKTOP_UA.replace('Chrome/138.0.0.0', `Chrome/138.0.0.${i + 1}`), path);
  }

  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const visitors = (n) =>
      waitFor(`${n} visitors`, async () => (await page.locator('.metric[data-metric="visitors"] .metric-value').textContent()).trim() === String(n), {
        timeout: 15000,
      });
    const picker = page.locator('.filter-picker');
    const addFilter = async (dimension, operator, values) => {
      await page.locator('.filter-menu summary').click();
      await picker.getByLabel('Dimension').selectOption({ label: dimension });
      await picker.getByLabel('Operator').selectOption({ label: operator });
      for (const v of values) {
        await picker.getByLabel('Value', { exact: true }).fill(v);
        await picker.getByLabel('Value', { exact: true }).press('Enter');
      }
      await picker.getByRole('button', { name: 'Apply filter' }).click();
    };

    step('sign in');
    await signIn(page, APP, env('USER_EMAIL'), env('USER_PASSWORD'));

    step('the three visitors, once the flusher stored them');
    await page.goto(`${APP}/sites/${SITE}?period=today`);
    await waitFor('the visits stored', async () => {
      await page.reload();
      await page.locator('.metric[data-metric="visitors"] .metric-value').waitFor();
      return (await page.locator('.metric[data-metric="visitors"] .metric-value').textContent()).trim() === '3';
    }, { timeout: 20000, interval: 1000 });

    step('page contains /blog, through the picker');
    await addFilter('Page', 'contains', ['/blog']);
    await page.getByRole('button', { name: 'Remove filter Page contains /blog' }).waitFor();
    await visitors(2);
    assert(new URL(page.url()).searchParams.get('contains.page') === '/blog', `URL ${page.url()}`);

    step('the filter survives a reload');
    await page.reload();
    await page.getByRole('button', { name: 'Remove filter Page contains /blog' }).waitFor();
    await visitors(2);

    step('removing the chip; back brings it again, forward removes it');
    await page.getByRole('button', { name: 'Remove filter Page contains /blog' }).click();
    await visitors(3);
    await page.goBack();
    await page.getByRole('button', { name: 'Remove filter Page contains /blog' }).waitFor();
    await visitors(2);
    await page.goForward();
    await visitors(3);
    assert(!(await page.locator('.chip').count()), 'a chip left after forward');

    step('page is not /pricing or /blog/a: several values');
    await addFilter('Page', 'is not', ['/pricing', '/blog/a']);
    await page.getByRole('button', { name: 'Remove filter Page is not /pricing or /blog/a' }).waitFor();
    await visitors(1);
    assert(new URL(page.url()).searchParams.getAll('is_not.page').join() === '/pricing,/blog/a', `URL ${page.url()}`);

    step('save it as a shared segment');
    await page.locator('.segment-menu summary').click();
    await page.getByLabel('Save these filters as').fill('Blog B');
    await page.getByLabel('Share with everyone who reads this site').check();
    await page.getByRole('button', { name: 'Save segment' }).click();
    await page.locator('.segment-list').getByRole('button', { name: 'Blog B', exact: true }).waitFor();

    step('clear the filters, then apply the segment');
    await page.getByRole('button', { name: 'Remove filter Page is not /pricing or /blog/a' }).click();
    await visitors(3);
    await page.locator('.segment-menu summary').click();
    await page.locator('.segment-list').getByRole('button', { name: 'Blog B', exact: true }).click();
    await page.getByRole('button', { name: 'Remove filter Page is not /pricing or /blog/a' }).waitFor();
    await visitors(1);

    step('delete the segment');
    await page.locator('.segment-menu summary').click();
    await page.getByRole('button', { name: 'Delete segment Blog B' }).click();
    await page.locator('.segment-list', { hasText: 'No segments yet.' }).waitFor();

    step('a row click still adds an is filter');
    await page.getByRole('button', { name: 'Remove filter Page is not /pricing or /blog/a' }).click();
    await visitors(3);
    await page.locator('.panel', { hasText: 'Pages' }).locator('.row-filter', { hasText: '/blog/b' }).click();
    await page.getByRole('button', { name: 'Remove filter Page is /blog/b' }).waitFor();
    await visitors(1);

    step('overlay the previous period');
    assert(!(await page.locator('.chart path.prev').count()), 'a previous line before the toggle');
    await page.getByRole('button', { name: 'Compare with the previous period' }).click();
    await page.locator('.chart path.prev').waitFor({ state: 'attached' });
    assert(new URL(page.url()).searchParams.get('compare') === 'previous', `URL ${page.url()}`);
    // The first bucket: the previous period of today is cut to the time elapsed, so later buckets may have none.
    await page.locator('.chart svg').hover({ position: { x: 2, y: 20 } });
    await waitFor('the previous value in the tooltip', async () => /previous period/.test(await page.locator('.chart-tip').textContent()));
    await page.reload();
    await page.locator('.chart path.prev').waitFor({ state: 'attached' });
    assert((await page.getByRole('button', { name: 'Compare with the previous period' }).getAttribute('aria-pressed')) === 'true', 'toggle not pressed after reload');
    await page.getByRole('button', { name: 'Compare with the previous period' }).click();
    await waitFor('the overlay gone', async () => !(await page.locator('.chart path.prev').count()));
    assert(!errors.length, `page errors: ${errors.join('; ')}`);
  } finally {
    await close();
  }
});
