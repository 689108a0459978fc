// The site overview: period picker, filters, metric cards with the change
// against the previous period, the time series and the breakdown panels.
// Everything that defines the view lives in the URL, so a link reproduces it.
import { h, clear, append, uid } from '../dom.js';
import { overview, timeseries, breakdown, METRICS } from '../api.js';
import { setQuery } from '../router.js';
import { num, percent, duration, flag, countryName, capitalize } from '../format.js';
import { lineChart } from '../chart.js';
import { snippet } from './settings.js';
import { propsPanel } from './props.js';
import { readFilters, filterQuery, filterBar, withFilter, isFiltered } from './filters.js';
import { segmentMenu } from './segments.js';
import { funnelCard } from './funnels.js';
import { exportButton, csvButton } from './downloads.js';

// Periods as the API names them (docs/API.md).
export const PERIODS = [
  ['realtime', 'Last 30 minutes'],
  ['today', 'Today'],
  ['yesterday', 'Yesterday'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['month', 'This month'],
  ['last_month', 'Last month'],
  ['12mo', 'Last 12 months'],
  ['custom', 'Custom range'],
];
// Periods that include now refresh by themselves.
const LIVE_PERIODS = new Set(['realtime', 'today', '24h', '7d', '30d', 'month', '12mo']);

// Time series buckets a period may use; the first is the API's default.
// (The API refuses more than 2000 buckets: no minutes over a day.)
const INTERVALS = {
  realtime: ['minute'],
  today: ['hour', 'minute'],
  yesterday: ['hour', 'minute'],
  '24h': ['hour', 'minute'],
  '7d': ['day', 'hour'],
  '30d': ['day', 'hour'],
  month: ['day', 'hour'],
  last_month: ['day', 'hour'],
  '12mo': ['month', 'day'],
  custom: ['', 'hour', 'day', 'month'],
};
const INTERVAL_LABELS = { '': 'Automatic', minute: 'Minutes', hour: 'Hours', day: 'Days', month: 'Months' };

export const DIMENSIONS = {
  page: 'Page',
  hostname: 'Hostname',
  entry_page: 'Entry page',
  exit_page: 'Exit page',
  channel: 'Channel',
  referrer: 'Source',
  utm_source: 'UTM source',
  utm_medium: 'UTM medium',
  utm_campaign: 'UTM campaign',
  utm_term: 'UTM term',
  utm_content: 'UTM content',
  country: 'Country',
  region: 'Region',
  city: 'City',
  device: 'Device',
  browser: 'Browser',
  os: 'OS',
  event_name: 'Event',
  goal: 'Goal',
};

const PANELS = [
  { title: 'Pages', tabs: [['page', 'Top pages'], ['entry_page', 'Entry pages'], ['exit_page', 'Exit pages']] },
  { title: 'Sources', tabs: [['channel', 'Channels'], ['referrer', 'Sources'], ['utm_source', 'UTM source'], ['utm_medium', 'UTM medium'], ['utm_campaign', 'UTM campaign']] },
  { title: 'Locations', tabs: [['country', 'Countries'], ['region', 'Regions'], ['city', 'Cities']] },
  { title: 'Devices', tabs: [['device', 'Devices'], ['browser', 'Browsers'], ['os', 'Operating systems']] },
  { title: 'Custom events', tabs: [['event_name', 'Events']] },
  { title: 'Goals', tabs: [['goal', 'Goals']] },
];

// COLUMNS are the figures a dimension's rows have beside visitors. A page
// without engagement reports has 0 for both: a dash, not "0s".
const COLUMNS = {
  page: [
    { title: 'Time on page', class: 'time-on-page', text: (r) => (r.timeOnPage ? duration(r.timeOnPage) : '–') },
    { title: 'Scroll depth', class: 'scroll-depth', text: (r) => (r.scrollDepth ? `${r.scrollDepth}%` : '–') },
  ],
  event_name: [{ title: 'Events', class: 'events', text: (r) => num(r.events ?? r.count ?? r.pageviews) }],
  goal: [{ title: 'Conversion', class: 'conversion', text: (r) => `${r.conversionRate}%` }],
};

export function readState() {
  const q = new URLSearchParams(location.search);
  const period = PERIODS.some(([k]) => k === q.get('period')) ? q.get('period') : '7d';
  return {
    period,
    from: q.get('from') || (period === 'custom' ? localDay(-6) : ''),
    to: q.get('to') || (period === 'custom' ? localDay(0) : ''),
    interval: INTERVALS[period].includes(q.get('interval')) ? q.get('interval') : '',
    metric: METRICS.some((m) => m.key === q.get('metric')) ? q.get('metric') : 'visitors',
    compare: q.get('compare') === 'previous',
    filters: readFilters(q, DIMENSIONS),
  };
}

function writeState(s) {
  setQuery({
    period: s.period === '7d' ? '' : s.period,
    from: s.period === 'custom' ? s.from : '',
    to: s.period === 'custom' ? s.to : '',
    interval: s.interval,
    metric: s.metric === 'visitors' ? '' : s.metric,
    compare: s.compare ? 'previous' : '',
    ...filterQuery(s.filters),
  });
}

// localDay is the browser's calendar day, `days` from today, as YYYY-MM-DD.
function localDay(days) {
  const d = new Date();
  d.setDate(d.getDate() + days);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

const twoDecimals = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

function fmtMetric(m, v) {
  if (m.unit === 'percent') return percent(v);
  if (m.unit === 'duration') return duration(v);
  if (m.decimals) return twoDecimals.format(Number(v) || 0);
  return num(v);
}

function label(dim, value) {
  if (value === '' || value === null || value === undefined) return dim === 'referrer' || dim === 'channel' ? 'Direct / none' : '(none)';
  if (dim === 'country') return `${flag(value)} ${countryName(value)}`;
  if (dim === 'device' || dim === 'channel') return capitalize(value);
  return String(value);
}

// timeFormatter labels buckets of an interval in the site's time zone.
// Hours of a range longer than a day carry their date.
function timeFormatter({ interval, timezone, from, to }) {
  const timeZone = timezone || 'UTC';
  const multiDay = to - from > 86400000 * 1.5;
  return (t, short) => {
    try {
      if (interval === 'month') return t.toLocaleDateString([], { month: 'short', year: short ? '2-digit' : 'numeric', timeZone });
      if (interval === 'day') return t.toLocaleDateString([], { month: 'short', day: 'numeric', weekday: short ? undefined : 'short', timeZone });
      const time = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', timeZone });
      return multiDay ? `${t.toLocaleDateString([], { month: 'short', day: 'numeric', timeZone })}${short ? ' ' : ', '}${time}` : time;
    } catch {
      return t.toISOString();
    }
  };
}

// rangeText describes a response's range ("Mar 25 – Mar 31, 2024"); `to`
// is exclusive.
function rangeText({ from, to, timezone }) {
  if (!(from instanceof Date) || Number.isNaN(+from)) return '';
  const timeZone = timezone || 'UTC';
  const last = new Date(+to - 1);
  const day = (d, opts) => d.toLocaleDateString([], { month: 'short', day: 'numeric', timeZone, ...opts });
  try {
    if (day(from) === day(last)) return day(from, { year: 'numeric', weekday: 'short' });
    return `${day(from)} – ${day(last, { year: 'numeric' })}`;
  } catch {
    return '';
  }
}

export function overviewView(site, feed) {
  let state = readState();
  const controls = h('div', { class: 'controls' });
  const rangeLabel = h('span', { class: 'range muted', 'aria-live': 'polite' });
  const filterBox = h('div', { class: 'filters', 'aria-label': 'Filters' });
  const setup = h('div', { class: 'setup' });
  const cards = h('div', { class: 'metrics', role: 'group', 'aria-label': 'Key figures; pick one for the chart' });
  const chartBox = h('div', { class: 'card chart-card' });
  const panels = h('div', { class: 'panels' });
  const el = h('div', { class: 'overview' }, controls, filterBox, setup, cards, chartBox, panels);

  let seq = 0;
  let panelSeq = 0;
  let chart = null;
  let snip = null;
  let refreshTimer = 0;
  const panelState = PANELS.map((p) => ({ dim: p.tabs[0][0] }));

  const update = (patch) => {
    state = { ...state, ...patch };
    writeState(state);
    load();
  };

  const renderControls = () => {
    const pid = uid('period');
    const select = h(
      'select',
      {
        id: pid,
        onchange: () => {
          const patch = { period: select.value, interval: '' };
          // A custom range starts as the last 7 days.
          if (patch.period === 'custom' && !state.from) Object.assign(patch, { from: localDay(-6), to: localDay(0) });
          update(patch);
        },
      },
      PERIODS.map(([k, l]) => h('option', { value: k, selected: k === state.period }, l)),
    );
    clear(controls).append(h('label', { for: pid, class: 'sr-only' }, 'Period'), select);
    const intervals = INTERVALS[state.period];
    if (intervals.length > 1) {
      const iid = uid('interval');
      const interval = h(
        'select',
        { id: iid, onchange: () => update({ interval: interval.value === intervals[0] ? '' : interval.value }) },
        intervals.map((k) => h('option', { value: k, selected: k === (state.interval || intervals[0]) }, INTERVAL_LABELS[k])),
      );
      controls.append(h('label', { for: iid, class: 'sr-only' }, 'Chart interval'), interval);
    }
    if (state.period === 'custom') {
      const today = localDay(0);
      const from = h('input', { type: 'date', value: state.from || today, max: today, 'aria-label': 'From' });
      const to = h('input', { type: 'date', value: state.to || today, max: today, 'aria-label': 'To' });
      controls.append(
        from,
        h('span', { 'aria-hidden': 'true' }, '–'),
        to,
        h('button', { class: 'btn', type: 'button', onclick: () => update({ from: from.value, to: to.value }) }, 'Apply'),
      );
    }
    controls.append(rangeLabel, exportButton(site, () => state));
    const onFilters = (filters) => update({ filters });
    append(clear(filterBox), [
      filterBar({ siteId: site.id, state, dims: DIMENSIONS, label, onChange: onFilters }),
      segmentMenu({ site, filters: state.filters, onApply: onFilters }),
    ]);
  };

  const renderCards = (data) => {
    clear(cards);
    for (const m of METRICS) {
      const v = data?.metrics[m.key];
      let change = null;
      if (v && v.change !== null && Number.isFinite(v.change)) {
        const good = m.lowerIsBetter ? v.change < 0 : v.change > 0;
        const arrow = v.change > 0 ? '↑' : v.change < 0 ? '↓' : '';
        change = h(
          'span',
          { class: `change ${v.change === 0 ? '' : good ? 'good' : 'bad'}`, title: `Previous period: ${fmtMetric(m, v.previous)}` },
          `${arrow}${Math.abs(Math.round(v.change))}%`,
          h('span', { class: 'sr-only' }, ' compared with the previous period'),
        );
      }
      cards.append(
        h(
          'button',
          {
            class: 'metric',
            type: 'button',
            'aria-pressed': String(state.metric === m.key),
            dataset: { metric: m.key },
            onclick: () => update({ metric: m.key }),
          },
          h('span', { class: 'metric-label' }, m.label),
          h('span', { class: 'metric-value' }, v ? fmtMetric(m, v.value) : '–'),
          change,
        ),
      );
    }
  };

  const renderChart = (series) => {
    chart?.destroy?.();
    const m = METRICS.find((x) => x.key === state.metric);
    const values = (list) => list.map((p) => ({ t: p.t, v: Number(p[m.key]) || 0 }));
    const compare = series.previous && values(series.previous);
    chart = lineChart({ points: values(series.points), compare, label: m.label, format: (v) => fmtMetric(m, v), timeFormat: timeFormatter(series.range), timeZone: series.range.timezone });
    const toggle = h(
      'button',
      { class: 'btn ghost small compare-toggle', type: 'button', 'aria-pressed': String(state.compare), onclick: () => update({ compare: !state.compare }) },
      'Compare with the previous period',
    );
    clear(chartBox).append(h('div', { class: 'chart-head' }, h('h2', { class: 'sr-only' }, `${m.label} over time`), toggle), chart);
  };

  const renderPanel = (i, container, my) => {
    const p = PANELS[i];
    const ps = panelState[i];
    const tablist = h('div', { class: 'tablist', role: 'tablist', 'aria-label': p.title });
    const body = h('div', { class: 'panel-body', role: 'tabpanel' });
    for (const [dim, l] of p.tabs) {
      tablist.append(
        h(
          'button',
          {
            type: 'button',
            role: 'tab',
            'aria-selected': String(ps.dim === dim),
            tabindex: ps.dim === dim ? '0' : '-1',
            onclick: () => {
              ps.dim = dim;
              renderPanel(i, container, panelSeq);
            },
            onkeydown: (e) => {
              const idx = p.tabs.findIndex(([d]) => d === dim);
              const next = e.key === 'ArrowRight' ? idx + 1 : e.key === 'ArrowLeft' ? idx - 1 : null;
              if (next === null) return;
              ps.dim = p.tabs[(next + p.tabs.length) % p.tabs.length][0];
              renderPanel(i, container, panelSeq);
              container.querySelector('[aria-selected="true"]')?.focus();
            },
          },
          l,
        ),
      );
    }
    clear(container).append(h('div', { class: 'panel-head' }, h('h2', {}, p.title), csvButton(site, () => ps.dim, () => state)), tablist, body);
    body.append(h('p', { class: 'muted' }, 'Loading…'));
    let page = 1;
    const rows = [];
    const fetchPage = () =>
      breakdown(site.id, ps.dim, state, { limit: 10, page })
        .then((r) => {
          if (my !== panelSeq) return;
          rows.push(...r.rows);
          renderRows(body, ps.dim, rows, page < r.pages, () => {
            page++;
            fetchPage();
          });
        })
        .catch((err) => {
          if (my !== panelSeq) return;
          clear(body).append(h('p', { class: 'error' }, `Could not load: ${err.message}`));
        });
    fetchPage();
  };

  const renderRows = (body, dim, rows, more, onMore) => {
    clear(body);
    if (!rows.length) {
      body.append(h('p', { class: 'muted empty-panel' }, 'No data for this period.'));
      return;
    }
    const key = 'visitors';
    const max = Math.max(...rows.map((r) => Number(r[key]) || 0), 1);
    const table = h(
      'table',
      { class: 'breakdown' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, DIMENSIONS[dim]), h('th', { scope: 'col', class: 'num' }, 'Visitors'), (COLUMNS[dim] || []).map((c) => h('th', { scope: 'col', class: 'num' }, c.title)))),
      h(
        'tbody',
        {},
        rows.map((r) => {
          const active = isFiltered(state.filters, dim, String(r.value));
          return h(
            'tr',
            { style: { '--w': `${((Number(r[key]) || 0) / max) * 100}%` } },
            h(
              'td',
              {},
              h(
                'button',
                {
                  class: 'row-filter',
                  type: 'button',
                  'aria-pressed': String(active),
                  title: `Filter by ${DIMENSIONS[dim]} ${label(dim, r.value)}`,
                  onclick: () => update({ filters: withFilter(state.filters, dim, 'is', [String(r.value)]) }),
                },
                label(dim, r.value),
              ),
            ),
            h('td', { class: 'num' }, num(r.visitors)),
            (COLUMNS[dim] || []).map((c) => h('td', { class: `num ${c.class}` }, c.text(r))),
          );
        }),
      ),
    );
    body.append(table);
    if (more) body.append(h('button', { class: 'btn ghost small more', type: 'button', onclick: onMore }, 'Show more'));
  };

  const load = async ({ quiet = false } = {}) => {
    const my = ++seq;
    // A quiet refresh keeps the controls, and so an open filter picker.
    if (!quiet) renderControls();
    if (!quiet) {
      cards.setAttribute('aria-busy', 'true');
      if (!cards.childElementCount) renderCards(null);
    }
    const [ov, ts] = await Promise.allSettled([overview(site.id, state), timeseries(site.id, state)]);
    if (my !== seq) return;
    cards.removeAttribute('aria-busy');
    if (ov.status === 'fulfilled') {
      renderCards(ov.value);
      rangeLabel.textContent = rangeText(ov.value.range);
      const m = ov.value.metrics;
      const empty = !m.visitors.value && !m.pageviews.value && !state.filters.length;
      if (empty && !snip && !feed.hasData && !site.readOnly) {
        snip = snippet(site, feed);
        clear(setup).append(snip.el);
      }
      if (!empty) feed.markData();
    } else {
      clear(cards).append(h('p', { class: 'error', role: 'alert' }, `Could not load the figures: ${ov.reason?.message}`));
    }
    if (ts.status === 'fulfilled') renderChart(ts.value);
    else clear(chartBox).append(h('p', { class: 'error' }, `Could not load the chart: ${ts.reason?.message}`));
    if (!quiet) {
      const mine = ++panelSeq;
      clear(panels);
      PANELS.forEach((_, i) => {
        const c = h('section', { class: 'card panel' });
        panels.append(c);
        renderPanel(i, c, mine);
      });
      panels.append(propsPanel(site.id, state, (dim, value) => update({ filters: withFilter(state.filters, dim, 'is', [value]) })));
      panels.append(funnelCard(site, state));
    }
  };

  load();
  // Periods that include now refresh by themselves.
  refreshTimer = setInterval(() => {
    if (!document.hidden && LIVE_PERIODS.has(state.period)) load({ quiet: true });
  }, 60000);

  return {
    el,
    onQuery() {
      state = readState();
      load();
    },
    destroy() {
      seq++;
      panelSeq++;
      clearInterval(refreshTimer);
      chart?.destroy?.();
      snip?.destroy();
    },
  };
}
