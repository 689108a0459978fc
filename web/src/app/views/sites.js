// The sites list and the new-site form.
import { h, clear } from '../dom.js';
import { sites, siteDomains, me, isSuperuser } from '../api.js';
import { navigate } from '../router.js';
import { siteForm } from './settings.js';

export function sitesView() {
  const list = h('div', { class: 'site-list', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const el = h(
    'section',
    { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Sites'), h('a', { class: 'btn primary', href: '/sites/new' }, '+ New site')),
    list,
  );

  sites
    .list()
    .then((items) => {
      clear(list).removeAttribute('aria-busy');
      if (!items.length) {
        list.append(
          h(
            'div',
            { class: 'card empty' },
            h('h2', {}, 'No sites yet'),
            h('p', {}, 'Add the website you want to measure; you will get a one-line snippet to paste into its pages.'),
            h('a', { class: 'btn primary', href: '/sites/new' }, 'Add your first site'),
          ),
        );
        return;
      }
      const user = me();
      list.append(
        h(
          'ul',
          { class: 'cards' },
          items.map((s) =>
            h(
              'li',
              { class: 'card site-card' },
              h('h2', {}, h('a', { href: `/sites/${s.id}` }, s.name || siteDomains(s)[0] || s.id)),
              h('p', { class: 'muted' }, siteDomains(s).join(', ') || 'No domain yet'),
              h(
                'p',
                { class: 'row' },
                h('a', { href: `/sites/${s.id}/live` }, 'Live'),
                s.owner === user?.id || isSuperuser() ? h('a', { href: `/sites/${s.id}/settings` }, 'Settings') : null,
              ),
            ),
          ),
        ),
      );
    })
    .catch((err) => {
      clear(list).removeAttribute('aria-busy');
      list.append(h('p', { class: 'error', role: 'alert' }, `Could not load your sites: ${err.message}`));
    });

  return { title: 'Sites', el };
}

export function newSiteView() {
  const el = h('section', { class: 'page narrow' }, h('h1', {}, 'New site'));
  el.append(
    siteForm(null, {
      submitLabel: 'Create site',
      onSaved: (site) => navigate(`/sites/${site.id}/settings?created=1`),
    }),
  );
  return { title: 'New site', el };
}
