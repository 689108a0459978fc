// The tracker in a real browser: pageview on load, SPA navigations (push,
// replace, popstate), custom events, heartbeats that pause while hidden, the
// leave beacon on pagehide, the localhost rule and the data-api override.
// Every hit must reach /api/collect as text/plain JSON and be recorded (202
// without a drop reason).
//
// Env: CHROMIUM_PATH, APP_URL (a recording proxy in front of the app, with
// GET /__hits), PAGE_URL (http://shop.pocketlytics.test:PORT),
// LOCAL_URL (the same page server as http://localhost:PORT), SITE_ID.
import { launch, env, assert, waitFor, step, run } from './lib.mjs';

const APP = env('APP_URL');
const PAGE = env('PAGE_URL');
const LOCAL = env('LOCAL_URL');
const SITE = env('SITE_ID');

run(async () => {
  const { context, close } = await launch();
  // The proxy in front of the app records each hit with the app's answer;
  // it sees beacons sent while a page unloads, which the browser's own
  // request events miss.
  let hits = [];
  const sync = async () => {
    hits = await (await fetch(`${APP}/__hits`)).json();
    return hits;
  };
  const of = (type) => hits.filter((h) => h.body?.type === type);
  const waitHit = (what, fn, opts) => waitFor(what, async () => (await sync(), fn()), opts);

  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));

    step('pageview on load');
    await page.goto(`${PAGE}/shop?utm_source=newsletter`, { waitUntil: 'load' });
    const pv = await waitHit('the first pageview', () => of('pageview')[0]);
    assert(pv.path === '/api/collect', `hits go to the script's host: ${pv.path}`);
    assert(pv.method === 'POST', 'POST');
    assert(/^text\/plain/.test(pv.contentType), `text/plain body, got ${pv.contentType}`);
    assert(pv.body.site === SITE, 'site id');
    assert(pv.body.url === `${PAGE}/shop?utm_source=newsletter`, `url ${pv.body.url}`);
    assert(pv.body.title === 'Shop', `title ${pv.body.title}`);
    assert(pv.body.w === 1280, `w = innerWidth, got ${pv.body.w}`);
    assert(pv.body.referrer === '', 'no referrer on a typed URL');

    step('SPA navigation: pushState');
    // The stores keep whole seconds, and a visit's source (utm_source,
    // checked afterwards) is its first pageview's, ties within a second
    // going to the smaller value: navigate in the next second.
    await page.waitForTimeout(1100);
    await page.evaluate(() => history.pushState({}, '', '/shop/cart'));
    await waitHit('a pageview for /shop/cart', () => of('pageview').find((h) => h.body.url.endsWith('/shop/cart')));

    step('replaceState on the same path is not a pageview');
    const before = of('pageview').length;
    await page.evaluate(() => history.replaceState({}, '', '/shop/cart?step=2'));
    await page.waitForTimeout(300);
    await sync();
    assert(of('pageview').length === before, 'no pageview for a query-only change');

    step('popstate');
    await page.goBack();
    await waitHit('a pageview after going back', () => of('pageview').length === before + 1);
    assert(of('pageview').at(-1).body.url.includes('/shop?utm_source=newsletter'), 'back on /shop');

    step('custom event');
    await page.evaluate(() => window.pocketlytics.track('Signup', { plan: 'pro', seats: 3, skip: { nested: true } }));
    const ev = await waitHit('the custom event', () => of('event')[0]);
    assert(ev.body.name === 'Signup', 'event name');
    assert(JSON.stringify(ev.body.props) === JSON.stringify({ plan: 'pro', seats: '3' }), `props stringified, got ${JSON.stringify(ev.body.props)}`);

    step('heartbeat while visible');
    const pings = of('ping').length;
    await waitHit('pings every second (data-heartbeat="1")', () => of('ping').length >= pings + 2, { timeout: 4000 });

    step('no heartbeat while hidden');
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await page.waitForTimeout(300);
    const hiddenPings = (await sync(), of('ping').length);
    await page.waitForTimeout(2200);
    await sync();
    assert(of('ping').length === hiddenPings, `no ping while hidden (${of('ping').length - hiddenPings} sent)`);
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitHit('pings again once visible', () => of('ping').length > hiddenPings, { timeout: 3000 });

    step('leave beacon on pagehide');
    await page.goto(`${PAGE}/plain`);
    const leave = await waitHit('the leave beacon', () => of('leave')[0]);
    assert(/^text\/plain/.test(leave.contentType), `beacon is text/plain, got ${leave.contentType}`);
    assert(leave.body.url.includes('/shop'), 'leave names the page left');

    step('localhost pages send nothing by default');
    const count = (await sync()).length;
    await page.goto(`${LOCAL}/shop`);
    await page.waitForTimeout(1500);
    await page.goto(`${LOCAL}/plain`);
    await page.waitForTimeout(300);
    await sync();
    assert(hits.length === count, `localhost page sent ${hits.length - count} hits`);

    step('data-allow-localhost and data-api');
    await page.goto(`${LOCAL}/override`);
    await waitHit('a pageview from the localhost page', () => hits.slice(count).find((h) => h.body?.type === 'pageview' && h.body.url.startsWith(LOCAL)));

    step('the app accepted every hit');
    await page.goto(`${PAGE}/plain`);
    await page.waitForTimeout(500);
    await sync();
    const refused = hits.filter((h) => h.status !== 202);
    assert(!refused.length, `hits not accepted: ${JSON.stringify(refused.map((h) => [h.body?.type, h.status, h.answer]))}`);
    // The app answers 202 to bots too, naming the reason in a header.
    const dropped = hits.filter((h) => h.dropped);
    assert(!dropped.length, `hits dropped: ${JSON.stringify(dropped.map((h) => [h.body?.type, h.dropped, h.userAgent, h.secChUa]))}`);
    const headless = hits.filter((h) => /headless/i.test(h.userAgent + h.secChUa));
    assert(!headless.length, `hits that look headless: ${JSON.stringify(headless.map((h) => [h.body?.type, h.userAgent, h.secChUa]))}`);
    console.log(`browser: ${hits[0].userAgent}; Sec-CH-UA: ${hits[0].secChUa || '(none)'}`);
    console.log(`hits: ${hits.length} (${['pageview', 'event', 'ping', 'leave'].map((t) => `${t} ${of(t).length}`).join(', ')})`);
  } finally {
    await close();
  }
});
