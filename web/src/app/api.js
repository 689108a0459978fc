// The PocketBase client and the analytics API calls. Everything the
// dashboard reads goes through here, so adapting to an API change touches
// one file.
import PocketBase from 'pocketbase';

// Same origin: the dashboard is served by the app it talks to. The SDK's
// default LocalAuthStore keeps the session across reloads.
export const pb = new PocketBase(location.origin);
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

// Sites. `domains` is a list of host names.
export const sites = {
  list: () => pb.collection('sites').getFullList({ sort: 'name' }),
  get: (id) => pb.collection('sites').getOne(id, { expand: 'members' }),
  create: (data) => pb.collection('sites').create(data),
  update: (id, data) => pb.collection('sites').update(id, data, { expand: 'members' }),
  remove: (id) => pb.collection('sites').delete(id),
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

function analytics(siteId, path, query) {
  return pb.send(`/api/analytics/sites/${encodeURIComponent(siteId)}/${path}`, { query: clean(query) });
}

function clean(query) {
  const q = {};
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') q[k] = v;
  return q;
}

// filterParam encodes the dashboard's filters ({dimension: value}) for the
// API's `filters` parameter.
export function filterParam(filters) {
  const parts = Object.entries(filters || {}).map(([k, v]) => `${k}==${String(v).replace(/[;\\]/g, '\\$&')}`);
  return parts.join(';');
}

function query(state, extra) {
  return {
    period: state.period,
    from: state.period === 'custom' ? state.from : undefined,
    to: state.period === 'custom' ? state.to : undefined,
    filters: filterParam(state.filters),
    ...extra,
  };
}

const num = (v) => (typeof v === 'number' ? v : Number(v) || 0);

// pick reads a metric by its snake_case key or its camelCase twin.
const camel = (k) => k.replace(/_(\w)/g, (_, c) => c.toUpperCase());
export function pick(obj, key) {
  if (!obj) return undefined;
  return obj[key] ?? obj[camel(key)];
}

// Metrics of the overview, in display order.
export const METRICS = [
  { key: 'visitors', label: 'Unique visitors' },
  { key: 'visits', label: 'Visits' },
  { key: 'pageviews', label: 'Pageviews' },
  { key: 'views_per_visit', label: 'Views per visit' },
  { key: 'bounce_rate', label: 'Bounce rate', lowerIsBetter: true, unit: 'percent' },
  { key: 'visit_duration', label: 'Visit duration', unit: 'duration' },
];

// overview returns {metrics: {key: {value, previous, change}}}.
export async function overview(siteId, state) {
  const r = await analytics(siteId, 'overview', query(state));
  const cur = r.current || r.metrics || r;
  const prev = r.previous || r.comparison || {};
  const out = {};
  for (const m of METRICS) {
    const v = pick(cur, m.key);
    const value = num(v && typeof v === 'object' ? v.value : v);
    const p = v && typeof v === 'object' && 'previous' in v ? v.previous : pick(prev, m.key);
    const previous = p === undefined || p === null ? null : num(p && typeof p === 'object' ? p.value : p);
    let change = v && typeof v === 'object' && 'change' in v ? v.change : undefined;
    if (change === undefined || change === null) {
      change = previous ? ((value - previous) / previous) * 100 : null;
    }
    out[m.key] = { value, previous, change };
  }
  return { metrics: out, raw: r };
}

// timeseries returns {interval, points: [{t: Date, visitors, visits, pageviews, ...}]}.
export async function timeseries(siteId, state) {
  const r = await analytics(siteId, 'timeseries', query(state, { interval: state.interval }));
  const rows = Array.isArray(r) ? r : r.points || r.items || r.results || r.series || [];
  return {
    interval: r.interval || state.interval || '',
    points: rows.map((p) => {
      const out = { t: new Date(p.t ?? p.time ?? p.date ?? p.bucket) };
      for (const m of METRICS) out[m.key] = num(pick(p, m.key));
      return out;
    }),
  };
}

// breakdown returns {rows: [{value, visitors, ...}], total}.
export async function breakdown(siteId, dimension, state, opts = {}) {
  const r = await analytics(siteId, `breakdown/${dimension}`, query(state, { limit: opts.limit || 10, page: opts.page }));
  const rows = Array.isArray(r) ? r : r.items || r.results || r.rows || [];
  return {
    rows: rows.map((row) => ({ ...row, value: row.value ?? row.name ?? row[dimension] ?? '' })),
    total: r.totalItems ?? r.total ?? r.totalValues ?? rows.length,
  };
}

// normalizeArrival gives arrivals (live messages and snapshot entries) one
// shape: entry (landing path), path (current path), at (ms).
export function normalizeArrival(a) {
  const time = a.time ?? a.t;
  return {
    ...a,
    entry: a.entry ?? a.page ?? '',
    path: a.page ?? a.path ?? a.entry ?? '',
    at: time ? new Date(time).getTime() || Date.now() : Date.now(),
  };
}

// onlineSeries accepts [{t, visitors}] or {start, step (seconds), counts}.
function onlineSeries(o) {
  if (Array.isArray(o)) return o.map((p) => ({ t: new Date(p.t ?? p.time), visitors: num(p.visitors ?? p.count) }));
  if (o && Array.isArray(o.counts)) {
    const start = new Date(o.start).getTime();
    const step = (Number(o.step) || 60) * 1000;
    return o.counts.map((c, i) => ({ t: new Date(start + i * step), visitors: num(c) }));
  }
  return [];
}

// live returns the live snapshot: {count, push, arrivals, pages: [{path,
// visitors}], referrers: [{host, visitors}], online: [{t, visitors}]}.
export async function live(siteId) {
  const r = await analytics(siteId, 'live');
  return {
    count: num(r.count ?? r.visitors),
    push: r.push !== false,
    arrivals: (r.arrivals || []).map(normalizeArrival),
    pages: (r.pages || []).map((p) => ({ path: p.path ?? p.value ?? p.page ?? '', visitors: num(p.visitors) })),
    referrers: (r.referrers || []).map((x) => ({ host: x.host ?? x.value ?? '', visitors: num(x.visitors) })),
    online: onlineSeries(r.online),
  };
}

export function liveTopic(siteId) {
  return `analytics/live/${siteId}`;
}
