// Embeds in a real browser: the owner lists an origin in the settings; a
// page on that origin shows the share link in an <iframe> (compact, no top
// bar), a page on another origin cannot, nor can the allowed origin frame
// any other page of the dashboard.
//
// Env: CHROMIUM_PATH, APP_URL, SITE_ID, SHARE_URL, USER_EMAIL, USER_PASSWORD,
// ALLOWED (origin), REFUSED (origin).
import { launch, env, assert, step, run, signIn } from './lib.mjs';

const APP = env('APP_URL');

run(async () => {
  const { context, close } = await launch();
  try {
    const page = context.pages()[0] || (await context.newPage());
    step('the owner lists the allowed origin');
    await signIn(page, APP, env('USER_EMAIL'), env('USER_PASSWORD'));
    await page.goto(`${APP}/sites/${env('SITE_ID')}/settings`);
    await page.getByLabel('Sites that may show share links in an iframe').fill(env('ALLOWED'));
    await page.getByRole('button', { name: 'Save origins' }).click();
    await page.getByText('Saved.').last().waitFor();

    // A fresh browser: the frames are signed out, as on a visitor's screen.
    const guest = await launch();
    try {
      const g = guest.context.pages()[0] || (await guest.context.newPage());
      const share = encodeURIComponent(env('SHARE_URL'));
      step('the allowed origin frames the share link');
      await g.goto(`${env('ALLOWED')}/host?src=${share}`);
      const frame = g.frameLocator('iframe');
      await frame.getByRole('heading', { name: 'E2E embedded shop', level: 1 }).waitFor({ timeout: 10000 });
      assert(!(await frame.locator('.topbar').isVisible()), 'the framed share page shows the top bar');

      step('another origin cannot');
      await g.goto(`${env('REFUSED')}/host?src=${share}`);
      await g.waitForTimeout(1500);
      assert(!(await frame.getByRole('heading', { name: 'E2E embedded shop' }).count()), 'a refused origin framed the share link');

      step('nor can the allowed origin frame another page');
      await g.goto(`${env('ALLOWED')}/host?src=${encodeURIComponent(`${APP}/login`)}`);
      await g.waitForTimeout(1500);
      assert(!(await frame.getByRole('button', { name: 'Sign in' }).count()), 'the sign-in page was framed');
    } finally {
      await guest.close();
    }
  } finally {
    await close();
  }
});
