// Shared helpers of the browser scripts: launch Debian's chromium through
// playwright-core, fail loudly, wait for conditions.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Headless Chromium says "HeadlessChrome" in its user agent (and may carry a
// "HeadlessChrome" brand in Sec-CH-UA), which the ingest route drops as
// headless; the tests present a regular desktop Chrome. The context's
// userAgent covers the pages, the --user-agent flag what the browser sends
// by itself (beacons of a page being unloaded), and the hits' Sec-CH-UA is
// checked by the scripts.
export const DESKTOP_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36';

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

// launch starts chromium with a fresh profile; *.test names resolve to
// 127.0.0.1 so pages can be served on host names other than localhost.
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'pl-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env('CHROMIUM_PATH'),
    headless: true,
    userAgent: DESKTOP_UA,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      `--user-agent=${DESKTOP_UA}`,
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP *.test 127.0.0.1',
      // WebGL (the live globe) on the CPU.
      '--enable-unsafe-swiftshader',
      '--use-angle=swiftshader',
    ],
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

// collect posts one hit to app's /api/collect as a browser on a page would
// (text/plain; X-Forwarded-For and Origin when given) and fails the script
// unless the hit was accepted and kept. It returns Date.now() at the 202.
export async function collect(app, body, { ua = DESKTOP_UA, ip, origin } = {}) {
  const headers = { 'Content-Type': 'text/plain', 'User-Agent': ua };
  if (ip) headers['X-Forwarded-For'] = ip;
  if (origin) headers.Origin = origin;
  const res = await fetch(`${app}/api/collect`, { method: 'POST', headers, body: JSON.stringify(body) });
  const accepted = Date.now();
  assert(res.status === 202, `${body.type} hit answered ${res.status}: ${await res.text()}`);
  assert(!res.headers.get('x-pocketlytics-dropped'), `${body.type} hit dropped: ${res.headers.get('x-pocketlytics-dropped')}`);
  return accepted;
}

// signIn opens the dashboard at app signed out, is sent to the login page,
// signs the user in and waits for their sites.
export async function signIn(page, app, email, password) {
  await page.goto(`${app}/`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Sites', exact: true, level: 1 }).waitFor();
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export async function waitFor(what, fn, { timeout = 5000, interval = 50 } = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

export function step(name) {
  console.log(`step: ${name}`);
}

// run wraps a script's main function: exit 0 on success, 1 with the error.
export function run(main) {
  main().then(
    () => {
      console.log('ok');
      process.exit(0);
    },
    (err) => {
      console.error(err?.stack || String(err));
      process.exit(1);
    },
  );
}
