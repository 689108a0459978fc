// The PocketBase client and the analytics API calls. Everything the
// dashboard reads goes through here, so adapting to an API change touches
// one file.
import PocketBase, { BaseAuthStore } from 'pocketbase';
import { available } from './storage.js';

// Same origin: the dashboard is served by the app it talks to. The SDK's
// default LocalAuthStore keeps the session across reloads.
// Where storage is denied (framed on another site), the session lives in
// memory.
export const pb = new PocketBase(location.origin, available ? undefined : new BaseAuthStore());
pb.autoCancellation(false);

export function me() {
  return pb.authStore.isValid ? pb.authStore.record : null;
}

export function isSuperuser() {
  return pb.authStore.isValid && pb.authStore.isSuperuser;
}

export function signOut() {
  pb.realtime.unsubscribe().catch(() => {});
  pb.authStore.clear();
}

// Sites. `domains` is a list of host names. The collection is found by its
// fixed id: a host app may have given it another name.
const SITES = 'pocketlytics_sites';
export const sites = {
  list: () => pb.collection(SITES).getFullList({ sort: 'name' }),
  get: (id) => pb.collection(SITES).getOne(id, { expand: 'members' }),
  create: (data) => pb.collection(SITES).create(data),
  update: (id, data) => pb.collection(SITES).update(id, data, { expand: 'members' }),
  remove: (id) => pb.collection(SITES).delete(id),
};

export function siteDomains(site) {
  const d = site?.domains;
  if (Array.isArray(d)) return d;
  if (typeof d === 'string') return d.split(/[\s,]+/).filter(Boolean);
  return [];
}

export function parseDomains(text) {
  return [
    ...new Set(
      String(text || '')
        .split(/[\s,]+/)
        .map((d) => d.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/.*$/, ''))
        .filter(Boolean),
    ),
  ];
}

// findUser resolves a member given by e-mail or id. Users only see the
// users the collection's rules let them see.
export async function findUser(ref) {
  ref = ref.trim();
  if (!ref) throw new Error('Enter an e-mail address or a user id.');
  const filter = ref.includes('@') ? pb.filter('email = {:v}', { v: ref }) : pb.filter('id = {:v}', { v: ref });
  try {
    return await pb.collection('users').getFirstListItem(filter);
  } catch {
    throw new Error(`No user "${ref}" that you can add.`);
  }
}

// viewer holds a share link's parameters ({share, proof}) while the share
// page is open: they go with every analytics request and live subscription.
export const viewer = { query: {} };

function analytics(siteId, path, query) {
  return pb.send(`/api/analytics/sites/${encodeURIComponent(siteId)}/${path}`, { query: clean({ ...query, ...viewer.query }) });
}

function clean(query) {
  const q = {};
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') q[k] = v;
  return q;
}

// filterParam encodes the dashboard's filters ([{dim, op, values}]) for the
// API's `filters` parameter, in the JSON form with the values in an array,
// which the API takes literally (no `|` or `\` escapes).
export function filterParam(filters) {
  return filters?.length ? JSON.stringify(filters.map((f) => [f.dim, f.op, f.values.map(String)])) : '';
}

function query(state, extra) {
  const custom = state.period === 'custom';
  return {
    period: state.period,
    from: custom ? state.from : undefined,
    to: custom ? state.to : undefined,
    filters: filterParam(state.filters),
    ...extra,
  };
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : Number(v) || 0);

// Metrics of the overview, in display order; keys as the API names them.
export const METRICS = [
  { key: 'visitors', label: 'Unique visitors' },
  { key: 'visits', label: 'Visits' },
  { key: 'pageviews', label: 'Pageviews' },
  { key: 'viewsPerVisit', label: 'Views per visit', decimals: 2 },
  { key: 'bounceRate', label: 'Bounce rate', lowerIsBetter: true, unit: 'percent' },
  { key: 'visitDuration', label: 'Visit duration', unit: 'duration' },
];

// range reads a response's range: {period, from, to (exclusive), timezone, interval}.
function range(r) {
  const x = r?.range || {};
  return { ...x, from: new Date(x.from), to: new Date(x.to), timezone: x.timezone || 'UTC' };
}

// download saves an analytics answer (a CSV, the export zip) as a file: a
// fetch, so the session's token (or the share link's parameters) goes with it.
export async function download(siteId, path, state, extra, filename) {
  const q = new URLSearchParams(clean({ ...query(state, extra), ...viewer.query }));
  const headers = pb.authStore.token ? { Authorization: pb.authStore.token } : {};
  const res = await fetch(`${pb.baseURL}/api/analytics/sites/${encodeURIComponent(siteId)}/${path}?${q}`, { headers });
  if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message || `HTTP ${res.status}`);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(await res.blob());
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// overview returns {range, metrics: {key: {value, previous, change (percent or null)}}}.
export async function overview(siteId, state) {
  const r = await analytics(siteId, 'overview', query(state));
  const metrics = {};
  for (const m of METRICS) {
    const value = num(r.current?.[m.key]);
    const previous = r.previous ? num(r.previous[m.key]) : null;
    metrics[m.key] = { value, previous, change: previous ? ((value - previous) / previous) * 100 : null };
  }
  return { range: range(r), metrics };
}

// timeseries returns {range, points: [{t: Date, visitors, visits, ...}]}
// and, with state.compare, the previous period's points as `previous`.
export async function timeseries(siteId, state) {
  const r = await analytics(siteId, 'timeseries', query(state, { interval: state.interval, compare: state.compare ? 'previous' : undefined }));
  const points = (list) =>
    (list || []).map((p) => {
      const out = { t: new Date(p.time), events: num(p.events) };
      for (const m of METRICS) out[m.key] = num(p[m.key]);
      return out;
    });
  return { range: range(r), points: points(r.points), previous: r.previousPoints ? points(r.previousPoints) : null };
}

// siteFunnels lists a site's funnels, [{id, name, steps}], through the
// analytics API, so a share link reads them too.
export async function siteFunnels(siteId) {
  return (await analytics(siteId, 'funnels', {})).items || [];
}

// funnel returns GET …/funnels/{id} for the dashboard's period and filters:
// {name, steps: [{page|event, visitors, dropOff, conversionRate}]}.
export function funnel(siteId, funnelId, state) {
  return analytics(siteId, `funnels/${encodeURIComponent(funnelId)}`, query(state));
}

// breakdown returns one page of a dimension: {rows: [{value, visitors, ...}], total, pages}.
export async function breakdown(siteId, dimension, state, { limit = 10, page = 1 } = {}) {
  const r = await analytics(siteId, `breakdown/${encodeURIComponent(dimension)}`, query(state, { limit, page }));
  return { rows: r.items || [], total: num(r.totalItems), pages: num(r.totalPages) };
}

// normalizeArrival gives arrival messages and the snapshot's arrivals one
// shape: entry (the page they arrived on), path (their current page), at (ms).
// A message's `page` is the entry page; a snapshot entry has both.
export function normalizeArrival(a) {
  const entry = a.entry ?? a.page ?? '';
  return { ...a, entry, path: a.page ?? entry, at: new Date(a.time).getTime() || Date.now() };
}

// live returns the live snapshot of GET …/live (docs/LIVE.md): {count, push,
// arrivals, pages: [{path, visitors}], referrers: [{host, visitors}],
// online: [{t, visitors}]}.
export async function live(siteId) {
  const r = await analytics(siteId, 'live');
  const start = new Date(r.online?.start).getTime();
  const step = (num(r.online?.step) || 60) * 1000;
  return {
    count: num(r.count),
    push: r.push !== false,
    arrivals: (r.arrivals || []).map(normalizeArrival),
    pages: (r.pages || []).map((p) => ({ path: p.value, visitors: num(p.visitors) })),
    referrers: (r.referrers || []).map((x) => ({ host: x.value, visitors: num(x.visitors) })),
    online: Number.isFinite(start) ? (r.online.counts || []).map((c, i) => ({ t: new Date(start + i * step), visitors: num(c) })) : [],
  };
}

export function liveTopic(siteId) {
  return `analytics/live/${siteId}`;
}
