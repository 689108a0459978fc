// The live view: globe with a pin per current visitor, the arrivals feed,
// active pages, live referrers, visitors online over the day, today's
// conversions per goal, and a toast for each new visitor and conversion.
import { h, clear } from '../dom.js';
import { num, flag, place, deviceIcon, capitalize, timeAgo, clockTime } from '../format.js';
import { globe } from '../globe.js';
import { lineChart } from '../chart.js';
import { toasts } from '../toasts.js';
import { GoalCounts, goalsPanel, conversionToast, conversionLine } from '../liveconversions.js';

function list(title, rows, empty, render) {
  return h(
    'section',
    { class: 'card live-list' },
    h('h2', {}, title),
    rows.length ? h('ol', {}, rows.map(render)) : h('p', { class: 'muted' }, empty),
  );
}

// sinceFirstVisitor drops the empty start of the day's series (a quiet
// night, a site added at noon), keeping a few minutes before the first
// visitor and at least the last half hour (of the per-minute series).
function sinceFirstVisitor(points) {
  const first = points.findIndex((p) => p.v > 0);
  const lastHalfHour = Math.max(0, points.length - 30);
  return points.slice(first < 0 ? lastHalfHour : Math.min(Math.max(0, first - 10), lastHalfHour));
}

export function liveView(site, feed) {
  const timeZone = site.timezone || 'UTC';
  const g = globe();
  const big = h('strong', { class: 'big-count' }, num(feed.count));
  const mode = h('p', { class: 'live-mode-line muted', role: 'status' });
  const feedList = h('ol', { class: 'arrivals', 'aria-label': 'Latest arrivals' });
  const pagesBox = h('div');
  const refsBox = h('div');
  const onlineBox = h('section', { class: 'card online' }, h('h2', {}, 'Online today'));
  const errorBox = h('p', { class: 'error', role: 'alert', hidden: true });
  const counts = new GoalCounts(site.id, timeZone);
  const goals = goalsPanel(counts);
  const refreshGoals = () => counts.refresh().then(goals.render, () => {});

  const el = h(
    'div',
    { class: 'live' },
    h(
      'div',
      { class: 'live-stage' },
      h('div', { class: 'globe-box' }, g.el),
      h(
        'div',
        { class: 'live-side' },
        h('section', { class: 'card now' }, h('h2', {}, 'Visitors right now'), big, mode, errorBox),
        h('section', { class: 'card feed' }, h('h2', {}, 'Arrivals'), feedList),
      ),
    ),
    h('div', { class: 'live-grid' }, pagesBox, refsBox, goals.el),
    onlineBox,
  );

  const showMode = () => {
    mode.textContent = feed.mode === 'polling' ? 'Updating every 15 seconds (polling).' : feed.mode === 'push' ? 'Live.' : 'Connecting…';
    mode.dataset.mode = feed.mode;
  };

  const arrivalItem = (v) =>
    h(
      'li',
      { dataset: { visitor: v.visitor } },
      h('span', { class: 'flag', 'aria-hidden': 'true' }, flag(v.country)),
      h(
        'span',
        { class: 'who' },
        h('strong', {}, place(v)),
        h('span', { class: 'muted' }, h('span', { 'aria-hidden': 'true' }, deviceIcon(v.device), ' '), [capitalize(v.device), v.browser, v.os].filter(Boolean).join(' · ')),
        h('span', { class: 'muted' }, 'entered on ', h('code', {}, v.entry || v.path || '/'), v.referrer ? ` from ${v.referrer}` : ''),
      ),
      h('time', { datetime: new Date(v.at).toISOString(), title: clockTime(v.at) }, timeAgo(v.at)),
    );

  // Custom events and conversions in the feed: one line each.
  const activityItem = (m) =>
    h(
      'li',
      { class: m.kind, dataset: { visitor: m.visitor } },
      h('span', { class: 'flag', 'aria-hidden': 'true' }, m.kind === 'conversion' ? '🎯' : '⚡'),
      h(
        'span',
        { class: 'who' },
        h('strong', {}, m.kind === 'conversion' ? conversionLine(m) : m.name),
        h('span', { class: 'muted' }, m.kind === 'conversion' ? 'conversion on ' : `${place(m)} · on `, h('code', {}, m.page || '/')),
      ),
      h('time', { datetime: new Date(m.at).toISOString(), title: clockTime(m.at) }, timeAgo(m.at)),
    );

  const renderFeed = () => {
    clear(feedList);
    if (!feed.feed.length) feedList.append(h('li', { class: 'muted' }, 'Nobody has arrived yet. New visitors show up here within a second.'));
    for (const v of feed.feed) feedList.append(v.kind ? activityItem(v) : arrivalItem(v));
  };

  const renderAggregates = () => {
    clear(pagesBox).append(
      list('Active pages', feed.pages, 'No active pages.', (p) => h('li', {}, h('code', {}, p.path), h('span', { class: 'num' }, num(p.visitors)))),
    );
    clear(refsBox).append(
      list('Live referrers', feed.referrers, 'No referrers right now.', (r) => h('li', {}, h('span', {}, r.host || 'Direct / none'), h('span', { class: 'num' }, num(r.visitors)))),
    );
    onlineChart?.destroy?.();
    const points = sinceFirstVisitor(feed.online.map((p) => ({ t: new Date(p.t), v: Number(p.visitors) || 0 })));
    // The series runs from midnight in the site's time zone.
    onlineChart = lineChart({
      points,
      label: 'Visitors online',
      format: num,
      timeFormat: (t) => clockTime(t, timeZone),
      timeZone,
      height: 180,
    });
    clear(onlineBox).append(h('h2', {}, 'Online today'), onlineChart);
  };
  let onlineChart = null;

  for (const v of feed.visitors.values()) g.add(v, { focus: false });
  renderFeed();
  renderAggregates();
  showMode();
  refreshGoals();

  const offs = [
    feed.on('arrival', (v) => {
      g.add(v);
      toasts.visitor(v);
      renderFeed();
    }),
    feed.on('leave', (v) => g.remove(v)),
    feed.on('event', renderFeed),
    feed.on('conversion', (m) => {
      if (counts.add(m)) conversionToast(m);
      goals.render();
      renderFeed();
    }),
    feed.on('count', (n) => (big.textContent = num(n))),
    feed.on('mode', showMode),
    feed.on('snapshot', () => {
      errorBox.hidden = true;
      refreshGoals();
      renderFeed();
      renderAggregates();
      for (const v of feed.visitors.values()) g.add(v, { focus: false });
    }),
    feed.on('error', (err) => {
      errorBox.textContent = err?.status === 403 || err?.status === 404 ? 'You have no access to this site’s live data.' : '';
      errorBox.hidden = !errorBox.textContent;
    }),
  ];
  // Relative times age.
  const tick = setInterval(() => {
    for (const t of feedList.querySelectorAll('time')) t.textContent = timeAgo(new Date(t.dateTime).getTime());
  }, 10000);

  return {
    el,
    destroy() {
      offs.forEach((f) => f());
      clearInterval(tick);
      g.destroy();
      onlineChart?.destroy?.();
      toasts.clear();
    },
  };
}
