// A small history-API router. Routes are patterns such as '/sites/:id/live';
// links inside the app navigate without a reload.
//
// The app's paths are relative to where it is served: the page's <base href>
// ('/' standalone, '/analytics/' in a host app). '/sites/x' is the app's
// path, base + '/sites/x' the URL's.
export const base = new URL(document.baseURI).pathname.replace(/\/$/, '');

// url turns an app path into the URL's path.
export const url = (path) => base + path;

// appPath is the current URL's app path.
export function appPath() {
  const p = location.pathname;
  return p.startsWith(base + '/') ? p.slice(base.length) : p === base ? '/' : p;
}

const routes = [];
let current = null;
let onChange = () => {};

export function route(pattern, view) {
  const keys = [];
  const re = new RegExp(
    '^' +
      pattern.replace(/\/:(\w+)/g, (_, k) => {
        keys.push(k);
        return '/([^/]+)';
      }) +
      '/?$',
  );
  routes.push({ re, keys, view, pattern });
}

export function match(path) {
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1])));
      return { ...r, params };
    }
  }
  return null;
}

export function navigate(path, { replace = false } = {}) {
  const before = location.pathname;
  history[replace ? 'replaceState' : 'pushState'](null, '', url(path));
  onChange(before !== location.pathname);
}

// setQuery changes the query string in place (no new view), for state that
// should survive reloads and be shareable. Empty values are left out, except
// for the keys in `keep` (a filter may match the empty value).
export function setQuery(params, { replace = false, keep = [] } = {}) {
  const u = new URL(location.href);
  u.search = '';
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else if (v !== undefined && v !== null && (v !== '' || keep.includes(k))) u.searchParams.set(k, v);
  }
  if (u.href !== location.href) history[replace ? 'replaceState' : 'pushState'](null, '', u);
}

export function start(handler) {
  onChange = handler;
  addEventListener('popstate', () => handler(current !== appPath()));
  document.addEventListener('click', (e) => {
    const a = e.target.closest?.('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    if (!a.pathname.startsWith(base + '/') || a.pathname.startsWith('/api/') || a.pathname.startsWith('/_/')) return;
    e.preventDefault();
    navigate(a.pathname.slice(base.length) + a.search + a.hash);
  });
  handler(true);
}

export function setCurrent(path) {
  current = path;
}
