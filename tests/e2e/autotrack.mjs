// The tracker's opt-in auto-tracked events in a real browser: outbound link
// clicks (the navigation still happens, also to a new tab and by middle
// click), file downloads, a 404 page's meta tag, hash routes, and the
// engagement (visible time, scroll depth from a real scroll) that pings and
// the leave carry.
//
// Env: CHROMIUM_PATH, APP_URL (the recording proxy, GET /__hits), PAGE_URL,
// SITE_ID.
import { launch, env, assert, waitFor, step, run } from './lib.mjs';

const APP = env('APP_URL');
const PAGE = env('PAGE_URL');

run(async () => {
  const { context, close } = await launch();
  let hits = [];
  const sync = async () => (hits = await (await fetch(`${APP}/__hits`)).json());
  const events = (name) => hits.filter((h) => h.body?.type === 'event' && h.body.name === name);
  const waitHit = (what, fn, opts) => waitFor(what, async () => (await sync(), fn()), opts);

  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));

    step('engagement: scroll depth from a real scroll, sent with the pings');
    await page.goto(`${PAGE}/docs/`, { waitUntil: 'load' });
    await waitHit('the pageview', () => hits.find((h) => h.body?.type === 'pageview'));
    await page.mouse.move(400, 400);
    for (let i = 0; i < 12; i++) await page.mouse.wheel(0, 600);
    await waitFor('the page scrolled to the end', () => page.evaluate(() => innerHeight + scrollY >= document.documentElement.scrollHeight - 2));
    const ping = await waitHit('a ping with the deepest scroll', () =>
      hits.find((h) => h.body?.type === 'ping' && h.body.s === 100), { timeout: 4000 });
    assert(ping.body.e > 0 && ping.body.e <= 2000, `visible time since the last ping in ms, got ${ping.body.e}`);
    assert(ping.body.h === 1, 'data-hash sends the flag');

    step('hash routing');
    await page.evaluate(() => (location.hash = '#section'));
    await page.waitForTimeout(300);
    await sync();
    assert(hits.filter((h) => h.body?.type === 'pageview').length === 1, 'a plain anchor is no route');
    await page.evaluate(() => (location.hash = '#/guide/install'));
    const route = await waitHit('a pageview for the hash route', () =>
      hits.find((h) => h.body?.type === 'pageview' && h.body.url.endsWith('#/guide/install')));
    assert(route.body.h === 1, 'the route is sent with the hash flag');
    await page.evaluate(() => scrollTo(0, 0));

    step('file download');
    const download = page.waitForEvent('download');
    await page.click('#dl');
    await download;
    const dl = await waitHit('the download event', () => events('File Download')[0]);
    assert(dl.body.props.url === `${PAGE}/files/report.pdf`, `download url ${dl.body.props.url}`);
    assert(/^text\/plain/.test(dl.contentType), 'sent as a beacon');

    step('outbound link opened in a new tab (target=_blank)');
    const opened = context.waitForEvent('page');
    await page.click('#tab');
    const tab = await opened;
    await tab.waitForLoadState();
    assert(tab.url().endsWith('/landing?tab'), `the new tab shows the link, got ${tab.url()}`);
    await tab.close();
    await waitHit('the click on the new-tab link', () => events('Outbound Link: Click').find((h) => h.body.props.url.endsWith('?tab')));

    step('outbound link by middle click');
    const middle = context.waitForEvent('page');
    await page.click('#mid', { button: 'middle' });
    (await middle).close();
    await waitHit('the middle click', () => events('Outbound Link: Click').find((h) => h.body.props.url.endsWith('?middle')));

    step('outbound link: recorded, and the navigation happens');
    await Promise.all([page.waitForURL(/elsewhere\.test:\d+\/landing$/), page.click('#out')]);
    assert((await page.title()) === 'Landing', 'the browser followed the link');
    const out = await waitHit('the outbound click', () => events('Outbound Link: Click').find((h) => /\/landing$/.test(h.body.props.url)));
    assert(out.body.url.includes('/docs/#/guide/install'), `sent from the page, got ${out.body.url}`);
    const leave = await waitHit('the leave of the page', () => hits.find((h) => h.body?.type === 'leave'));
    assert(typeof leave.body.e === 'number' && leave.body.s >= 0, `the leave carries engagement: ${JSON.stringify(leave.body)}`);

    step('404 page by its meta tag');
    await page.goto(`${PAGE}/gone`);
    const nf = await waitHit('the 404 event', () => events('404')[0]);
    assert(nf.body.props.path === '/gone', `404 path ${nf.body.props.path}`);

    step('the app accepted every hit');
    await page.goto(`${PAGE}/plain`);
    await page.waitForTimeout(500);
    await sync();
    const refused = hits.filter((h) => h.status !== 202 || h.dropped);
    assert(!refused.length, `hits not recorded: ${JSON.stringify(refused.map((h) => [h.body?.type, h.status, h.dropped, h.answer]))}`);
    console.log(`hits: ${hits.length}`);
  } finally {
    await close();
  }
});
