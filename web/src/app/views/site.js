// The frame of one site: name, live counter, tabs (overview, live,
// settings) and the shared live feed.
import { h, clear } from '../dom.js';
import { sites, siteDomains, me, isSuperuser } from '../api.js';
import { feedFor, releaseFeed } from '../livefeed.js';
import { num } from '../format.js';
import { overviewView } from './overview.js';
import { liveView } from './live.js';
import { settingsView } from './settings.js';

const tabs = [
  ['overview', 'Overview', ''],
  ['live', 'Live', '/live'],
  ['settings', 'Settings', '/settings'],
];

// liveCounter shows "N online" with a pulsing dot and a quiet "polling" tag.
export function liveCounter(feed, siteId, href = `/sites/${siteId}/live`) {
  const value = h('span', { class: 'live-count' }, num(feed.count));
  const mode = h('span', { class: 'live-mode', title: 'Live updates arrive by polling every 15 seconds', hidden: feed.mode !== 'polling' }, 'polling');
  const el = h(
    'a',
    { class: 'live-pill', href, 'aria-live': 'polite', dataset: { mode: feed.mode } },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    value,
    h('span', {}, ' online'),
    mode,
  );
  const offs = [
    feed.on('count', (n) => {
      value.textContent = num(n);
      el.classList.remove('bump');
      void el.offsetWidth;
      el.classList.add('bump');
    }),
    feed.on('mode', (m) => {
      el.dataset.mode = m;
      mode.hidden = m !== 'polling';
    }),
  ];
  return { el, destroy: () => offs.forEach((f) => f()) };
}

export function siteView(tab) {
  return ({ id }) => {
    const body = h('div', { class: 'site-body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
    const title = h('h1', {}, '…');
    const domains = h('p', { class: 'muted domains' });
    const nav = h('nav', { class: 'tabs', 'aria-label': 'Site sections' });
    const head = h('div', { class: 'site-head' }, h('div', {}, title, domains));
    const el = h('section', { class: 'page site' }, h('p', { class: 'crumbs' }, h('a', { href: '/' }, '← All sites')), head, nav, body);

    let destroyed = false;
    let child = null;
    let counter = null;
    let feed = null;

    const view = {
      title: 'Site',
      el,
      onQuery: () => child?.onQuery?.(),
      destroy() {
        destroyed = true;
        child?.destroy?.();
        counter?.destroy();
        if (feed) releaseFeed(feed);
      },
    };

    sites
      .get(id)
      .then((site) => {
        if (destroyed) return;
        const canEdit = isSuperuser() || site.owner === me()?.id || (site.admins || []).includes(me()?.id);
        const show = (s) => {
          title.textContent = s.name || siteDomains(s)[0] || 'Site';
          domains.textContent = siteDomains(s).join(', ');
          document.title = `${title.textContent} · Pocketlytics`;
        };
        show(site);
        feed = feedFor(site.id);
        counter = liveCounter(feed, site.id);
        head.append(counter.el);
        clear(nav);
        for (const [key, label, suffix] of tabs) {
          if (key === 'settings' && !canEdit) continue;
          nav.append(h('a', { href: `/sites/${site.id}${suffix}`, 'aria-current': key === tab ? 'page' : false }, label));
        }
        body.removeAttribute('aria-busy');
        if (tab === 'overview') child = overviewView(site, feed);
        else if (tab === 'live') child = liveView(site, feed);
        else if (canEdit) child = settingsView(site, feed, show);
        else child = { el: h('p', { class: 'error', role: 'alert' }, 'Only the owner and admins can change this site.') };
        clear(body).append(child.el);
      })
      .catch((err) => {
        if (destroyed) return;
        title.textContent = 'Site not available';
        body.removeAttribute('aria-busy');
        clear(body).append(
          h(
            'div',
            { class: 'card empty', role: 'alert' },
            h('p', {}, err?.status === 404 || err?.status === 403 ? 'This site does not exist or you have no access to it.' : `Could not load the site: ${err.message}`),
            h('a', { class: 'btn', href: '/' }, 'Back to your sites'),
          ),
        );
      });

    return view;
  };
}
