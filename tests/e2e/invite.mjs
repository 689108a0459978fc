// Invitations in a real browser: the owner invites an admin in the
// settings; the app mails the link over SMTP (read back through MAIL_URL);
// a second browser opens it signed out, creates an account with the invited
// address, accepts and lands on the site with its settings. The owner then
// makes them a member, and their settings tab goes.
//
// Env: CHROMIUM_PATH, APP_URL, SITE_ID, OWNER_EMAIL, OWNER_PASSWORD,
// INVITEE_EMAIL, MAIL_URL.
import { launch, env, assert, waitFor, step, run, signIn } from './lib.mjs';

const APP = env('APP_URL');
const SITE = env('SITE_ID');
const INVITEE = env('INVITEE_EMAIL');

function watchConsole(page, errors) {
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
}

run(async () => {
  const owner = await launch();
  const guest = await launch();
  const errors = [];
  try {
    const page = owner.context.pages()[0] || (await owner.context.newPage());
    watchConsole(page, errors);
    step('owner signs in and opens the settings');
    await signIn(page, APP, env('OWNER_EMAIL'), env('OWNER_PASSWORD'));
    await page.goto(`${APP}/sites/${SITE}/settings`);

    step('invite an admin');
    await page.getByLabel('Invite by e-mail').fill(INVITEE);
    await page.getByLabel('Role', { exact: true }).selectOption('admin');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await page.getByText(`Invitation sent to ${INVITEE}.`).waitFor({ timeout: 10000 });
    await page.locator('.invitations li', { hasText: INVITEE }).waitFor();

    step('read the link from the mail');
    const link = await waitFor('the invitation mail', async () => {
      const res = await fetch(`${env('MAIL_URL')}?to=${encodeURIComponent(INVITEE)}`);
      return res.ok ? res.text() : '';
    });
    assert(link.startsWith(`${APP}/invite/`), `link ${link}`);

    step('the invitee opens it signed out and signs up');
    const g = guest.context.pages()[0] || (await guest.context.newPage());
    watchConsole(g, errors);
    await g.goto(link);
    await g.getByRole('heading', { name: 'Join E2E team shop' }).waitFor({ timeout: 10000 });
    await g.getByRole('link', { name: 'Create an account' }).click();
    await g.getByRole('heading', { name: 'Create an account' }).waitFor();
    assert((await g.getByLabel('E-mail').inputValue()) === INVITEE, 'the invited address is filled in');
    await g.getByLabel('Password (8 characters or more)').fill('invitee-password-1');
    await g.getByLabel('Repeat the password').fill('invitee-password-1');
    await g.getByRole('button', { name: 'Create account' }).click();

    step('accept and see the site');
    await g.getByRole('button', { name: 'Accept the invitation' }).click({ timeout: 10000 });
    await g.waitForURL(`${APP}/sites/${SITE}`, { timeout: 10000 });
    await g.getByRole('heading', { name: 'E2E team shop', exact: true }).waitFor({ timeout: 10000 });
    await g.getByRole('link', { name: 'Settings' }).waitFor();

    step('the owner sees the new admin and makes them a member');
    await page.reload();
    await page.locator('.team li', { hasText: INVITEE }).waitFor({ timeout: 10000 });
    assert((await page.locator('.invitations li').count()) === 0, 'the invitation is used up');
    await page.getByLabel(`Role of ${INVITEE}`).selectOption('member');
    await page.locator('.team li[data-role="member"]', { hasText: INVITEE }).waitFor({ timeout: 10000 });

    step('the member sees the statistics, not the settings');
    await g.reload();
    await g.getByRole('heading', { name: 'E2E team shop', exact: true }).waitFor({ timeout: 10000 });
    await g.getByRole('link', { name: 'Overview' }).waitFor();
    assert((await g.getByRole('link', { name: 'Settings' }).count()) === 0, 'a member has no settings tab');

    assert(errors.length === 0, errors.join('\n'));
  } finally {
    await guest.close();
    await owner.close();
  }
});
