// The page of one site: its frame (name, live counter, tabs) with the
// overview, the live view or the settings.
import { h } from '../dom.js';
import { sites, siteDomains, me, isSuperuser } from '../api.js';
import { siteFrame } from './frame.js';
import { overviewView } from './overview.js';
import { liveView } from './live.js';
import { settingsView } from './settings.js';

const tabs = [
  ['overview', 'Overview', ''],
  ['live', 'Live', '/live'],
  ['settings', 'Settings', '/settings'],
];

export function siteView(tab) {
  return ({ id }) => {
    const frame = siteFrame({
      title: 'Site',
      className: 'page site',
      navLabel: 'Site sections',
      crumbs: h('p', { class: 'crumbs' }, h('a', { href: '/' }, '← All sites')),
      subtitleClass: 'muted domains',
    });

    sites
      .get(id)
      .then((site) => {
        if (frame.destroyed) return;
        const canEdit = isSuperuser() || site.owner === me()?.id || (site.admins || []).includes(me()?.id);
        const show = (s) => frame.name(s.name || siteDomains(s)[0] || 'Site', siteDomains(s).join(', '));
        show(site);
        frame.open(site, {
          liveHref: `/sites/${site.id}/live`,
          tabs: tabs.filter(([key]) => key !== 'settings' || canEdit).map(([key, label, suffix]) => [label, `/sites/${site.id}${suffix}`, key === tab]),
          view: (feed) => {
            if (tab === 'overview') return overviewView(site, feed);
            if (tab === 'live') return liveView(site, feed);
            if (canEdit) return settingsView(site, feed, show);
            return { el: h('p', { class: 'error', role: 'alert' }, 'Only the owner and admins can change this site.') };
          },
        });
      })
      .catch((err) => {
        if (frame.destroyed) return;
        frame.notice(
          'Site not available',
          h(
            'div',
            { class: 'card empty', role: 'alert' },
            h('p', {}, err?.status === 404 || err?.status === 403 ? 'This site does not exist or you have no access to it.' : `Could not load the site: ${err.message}`),
            h('a', { class: 'btn', href: '/' }, 'Back to your sites'),
          ),
        );
      });

    return frame.view;
  };
}
