// Pocketlytics dashboard: entry point, app shell and routes.
import './style.css';
import { h, clear } from './dom.js';
import { pb, me, isSuperuser, signOut } from './api.js';
import { route, match, start, navigate, setCurrent, appPath } from './router.js';
import { loginView, signupView } from './views/login.js';
import { sitesView, newSiteView } from './views/sites.js';
import { siteView } from './views/site.js';
import { shareView } from './views/share.js';
import { inviteView } from './views/invite.js';
import { initTheme, themeToggle } from './theme.js';
import { toasts } from './toasts.js';

initTheme();
// Framed (an embedded share link): the compact layout, without the top bar.
if (window.top !== window.self) document.documentElement.classList.add('embedded');

route('/login', loginView);
route('/signup', signupView);
route('/', sitesView);
route('/sites/new', newSiteView);
route('/sites/:id', siteView('overview'));
route('/sites/:id/live', siteView('live'));
route('/sites/:id/settings', siteView('settings'));
route('/share/:token', shareView('overview'));
route('/share/:token/live', shareView('live'));
route('/invite/:token', inviteView);

const publicPaths = new Set(['/login', '/signup']);
// Share links and invitations open without an account, signed in or not.
const isShared = (path) => path.startsWith('/share/') || path.startsWith('/invite/');

const root = document.getElementById('app');
const main = h('main', { id: 'main', tabindex: '-1' });
const userBox = h('div', { class: 'user' });
root.append(
  h('a', { class: 'skip', href: '#main', onclick: (e) => (e.preventDefault(), main.focus()) }, 'Skip to content'),
  h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '/' }, h('img', { src: 'favicon.svg', alt: '', width: 24, height: 24 }), 'Pocketlytics'),
    h('div', { class: 'spacer' }),
    themeToggle(),
    userBox,
  ),
  main,
  toasts.el,
);

function renderUser() {
  clear(userBox);
  const user = me();
  if (!user) return;
  userBox.append(
    h('span', { class: 'who', title: user.email }, user.email || user.name || 'Signed in', isSuperuser() ? h('span', { class: 'badge' }, 'admin') : null),
    h(
      'button',
      {
        class: 'btn ghost',
        type: 'button',
        onclick: () => {
          signOut();
          navigate('/login');
        },
      },
      'Sign out',
    ),
  );
}

let view = null;

function render(pathChanged) {
  const path = appPath();
  if (!pathChanged && view?.onQuery) {
    view.onQuery();
    return;
  }
  setCurrent(path);
  renderUser();

  if (!pb.authStore.isValid && !publicPaths.has(path) && !isShared(path)) {
    const next = path === '/' ? '' : `?next=${encodeURIComponent(path + location.search)}`;
    navigate(`/login${next}`, { replace: true });
    return;
  }
  if (pb.authStore.isValid && publicPaths.has(path)) {
    navigate('/', { replace: true });
    return;
  }

  const m = match(path);
  const next = m ? m.view(m.params) : notFound();
  if (view?.destroy) view.destroy(next);
  view = next;
  clear(main).append(view.el);
  document.title = view.title ? `${view.title} · Pocketlytics` : 'Pocketlytics';
  if (pathChanged && document.activeElement !== document.body) main.focus({ preventScroll: true });
}

function notFound() {
  return {
    title: 'Not found',
    el: h('section', { class: 'page narrow' }, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/' }, 'Back to your sites'))),
  };
}

// A session that expires or is signed out elsewhere sends the user to sign in.
pb.authStore.onChange(() => {
  renderUser();
  if (!pb.authStore.isValid && !publicPaths.has(appPath()) && !isShared(appPath())) render(true);
});

// Keep the session fresh; a rejected refresh means it is no longer valid.
if (pb.authStore.isValid) {
  const coll = isSuperuser() ? '_superusers' : pb.authStore.record?.collectionName || 'users';
  pb.collection(coll)
    .authRefresh()
    .catch((err) => {
      if (err?.status === 401 || err?.status === 403 || err?.status === 404) pb.authStore.clear();
    });
}

start(render);
