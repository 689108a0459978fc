// The page of a share link (/share/{token}) or of a public site
// (/share/{siteId}): the site's overview and, when the link has it, the
// live view, read-only and without an account. The link's token (and the
// password's proof) go with every analytics request and live subscription.
import { h, clear, uid } from '../dom.js';
import { viewer } from '../api.js';
import { session } from '../storage.js';
import { shareInfo, unlockShare } from '../access.js';
import { LiveFeed, feedFor, releaseFeed } from '../livefeed.js';
import { liveCounter } from './site.js';
import { overviewView } from './overview.js';
import { liveView } from './live.js';

const proofKey = (token) => `pocketlytics.proof.${token}`;

export function shareView(tab) {
  return ({ token }) => {
    const title = h('h1', {}, '…');
    const nav = h('nav', { class: 'tabs', 'aria-label': 'Dashboard sections' });
    const head = h('div', { class: 'site-head' }, h('div', {}, title, h('p', { class: 'muted' }, 'Shared dashboard, read-only')));
    const body = h('div', { class: 'site-body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
    const el = h('section', { class: 'page site shared' }, head, nav, body);

    let destroyed = false;
    let child = null;
    let counter = null;
    let feed = null;
    let ownFeed = false;

    const view = {
      title: 'Shared dashboard',
      el,
      onQuery: () => child?.onQuery?.(),
      destroy() {
        destroyed = true;
        child?.destroy?.();
        counter?.destroy();
        if (feed && !ownFeed) releaseFeed(feed);
        viewer.query = {};
      },
    };

    const fail = (message) => {
      title.textContent = 'Link not available';
      body.removeAttribute('aria-busy');
      clear(body).append(h('div', { class: 'card empty', role: 'alert' }, h('p', {}, message)));
    };

    const askPassword = (wrong) => {
      title.textContent = 'Password required';
      body.removeAttribute('aria-busy');
      const id = uid('pw');
      const input = h('input', { id, type: 'password', name: 'password', required: true, autocomplete: 'current-password' });
      const err = h('p', { class: 'error', role: 'alert', hidden: !wrong }, wrong || '');
      clear(body).append(
        h(
          'form',
          {
            class: 'card form narrow',
            onsubmit: async (e) => {
              e.preventDefault();
              try {
                session.setItem(proofKey(token), await unlockShare(token, input.value));
                open();
              } catch (e2) {
                err.textContent = e2?.response?.message || e2.message;
                err.hidden = false;
              }
            },
          },
          h('label', { class: 'field', for: id }, h('span', {}, 'This dashboard is protected by a password')),
          input,
          err,
          h('div', { class: 'row' }, h('button', { class: 'btn primary', type: 'submit' }, 'Open')),
        ),
      );
      input.focus();
    };

    const open = async () => {
      const proof = session.getItem(proofKey(token)) || '';
      let info;
      try {
        info = await shareInfo(token, proof);
      } catch (err) {
        if (!destroyed) fail(err?.status === 404 ? 'This link does not exist, expired or was revoked.' : `Could not open the link: ${err.message}`);
        return;
      }
      if (destroyed) return;
      if (info.locked) return askPassword(proof ? 'The password changed; enter the new one.' : '');

      const site = { ...info.site, readOnly: true };
      // A public site's page needs no token: the site itself is open.
      viewer.query = site.id === token ? {} : { share: token, proof };
      title.textContent = site.name || 'Shared dashboard';
      document.title = `${title.textContent} · Pocketlytics`;
      const base = `/share/${encodeURIComponent(token)}`;
      if (info.live) {
        feed = feedFor(site.id);
        counter = liveCounter(feed, site.id, `${base}/live`);
        head.append(counter.el);
      } else {
        // Overview only: a feed that never connects holds its data flag.
        feed = new LiveFeed(site.id);
        ownFeed = true;
      }
      clear(nav);
      nav.append(h('a', { href: base, 'aria-current': tab === 'overview' ? 'page' : false }, 'Overview'));
      if (info.live) nav.append(h('a', { href: `${base}/live`, 'aria-current': tab === 'live' ? 'page' : false }, 'Live'));
      body.removeAttribute('aria-busy');
      child = tab === 'live' && info.live ? liveView(site, feed) : overviewView(site, feed);
      clear(body).append(child.el);
    };
    open();
    return view;
  };
}
