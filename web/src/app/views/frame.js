// The frame of one site's dashboard, the same on the site page and on a
// share page: the site's name and a line under it, the live counter, the
// tabs, and the body that holds the open tab's view.
import { h, clear } from '../dom.js';
import { LiveFeed, feedFor, releaseFeed } from '../livefeed.js';
import { num } from '../format.js';

// liveCounter shows "N online" with a pulsing dot and a quiet "polling" tag.
export function liveCounter(feed, href) {
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

// siteFrame returns a frame that shows "Loading…" until open or notice
// fills it; frame.view is what the router mounts.
//
//	const frame = siteFrame({ title: 'Site', className: 'page site', navLabel: 'Site sections' });
//	load().then((site) => frame.open(site, { liveHref, tabs, view: (feed) => overviewView(site, feed) }));
//	return frame.view;
export function siteFrame({ title: viewTitle, className, navLabel, crumbs = null, subtitle = '', subtitleClass = 'muted', onDestroy }) {
  const title = h('h1', {}, '…');
  const sub = h('p', { class: subtitleClass }, subtitle);
  const nav = h('nav', { class: 'tabs', 'aria-label': navLabel });
  const head = h('div', { class: 'site-head' }, h('div', {}, title, sub));
  const body = h('div', { class: 'site-body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', { class: className }, crumbs, head, nav, body);

  let child = null;
  let counter = null;
  let feed = null;
  let ownFeed = false;

  const frame = {
    // destroyed turns true when the router leaves the page: late answers
    // must not fill it.
    destroyed: false,
    view: {
      title: viewTitle,
      el,
      onQuery: () => child?.onQuery?.(),
      destroy() {
        frame.destroyed = true;
        child?.destroy?.();
        counter?.destroy();
        if (feed && !ownFeed) releaseFeed(feed);
        onDestroy?.();
      },
    },

    // name shows the heading, the line under it and the document's title.
    name(name, line) {
      title.textContent = name;
      if (line !== undefined) sub.textContent = line;
      document.title = `${name} · Pocketlytics`;
    },

    // open shows a site: the live counter linking to liveHref (without one,
    // a feed that never connects, which still holds the overview's data
    // flag), the tabs as [label, href, current], and the open tab's view,
    // made by view(feed).
    open(site, { liveHref, tabs, view }) {
      if (liveHref) {
        feed = feedFor(site.id);
        counter = liveCounter(feed, liveHref);
        head.append(counter.el);
      } else {
        feed = new LiveFeed(site.id);
        ownFeed = true;
      }
      clear(nav).append(...tabs.map(([label, href, current]) => h('a', { href, 'aria-current': current ? 'page' : false }, label)));
      child = view(feed);
      fill(child.el);
    },

    // notice puts node in the body under the heading text: a form, an error.
    notice(text, node) {
      title.textContent = text;
      fill(node);
    },
  };
  const fill = (node) => {
    body.removeAttribute('aria-busy');
    clear(body).append(node);
  };
  return frame;
}
