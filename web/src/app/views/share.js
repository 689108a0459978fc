// The page of a share link (/share/{token}) or of a public site
// (/share/{siteId}): the site's frame with the overview and, when the link
// has it, the live view, read-only and without an account. The link's
// token (and the password's proof) go with every analytics request and
// live subscription.
import { h, uid } from '../dom.js';
import { viewer } from '../api.js';
import { session } from '../storage.js';
import { shareInfo, unlockShare } from '../access.js';
import { siteFrame } from './frame.js';
import { overviewView } from './overview.js';
import { liveView } from './live.js';

const proofKey = (token) => `pocketlytics.proof.${token}`;

export function shareView(tab) {
  return ({ token }) => {
    const frame = siteFrame({
      title: 'Shared dashboard',
      className: 'page site shared',
      navLabel: 'Dashboard sections',
      subtitle: 'Shared dashboard, read-only',
      onDestroy: () => {
        viewer.query = {};
      },
    });

    const fail = (message) => frame.notice('Link not available', h('div', { class: 'card empty', role: 'alert' }, h('p', {}, message)));

    const askPassword = (wrong) => {
      const id = uid('pw');
      const input = h('input', { id, type: 'password', name: 'password', required: true, autocomplete: 'current-password' });
      const err = h('p', { class: 'error', role: 'alert', hidden: !wrong }, wrong || '');
      frame.notice(
        'Password required',
        h(
          'form',
          {
            class: 'card form narrow',
            onsubmit: async (e) => {
              e.preventDefault();
              try {
                session.setItem(proofKey(token), await unlockShare(token, input.value));
                open();
              } catch (e2) {
                err.textContent = e2?.response?.message || e2.message;
                err.hidden = false;
              }
            },
          },
          h('label', { class: 'field', for: id }, h('span', {}, 'This dashboard is protected by a password')),
          input,
          err,
          h('div', { class: 'row' }, h('button', { class: 'btn primary', type: 'submit' }, 'Open')),
        ),
      );
      input.focus();
    };

    const open = async () => {
      const proof = session.getItem(proofKey(token)) || '';
      let info;
      try {
        info = await shareInfo(token, proof);
      } catch (err) {
        if (!frame.destroyed) fail(err?.status === 404 ? 'This link does not exist, expired or was revoked.' : `Could not open the link: ${err.message}`);
        return;
      }
      if (frame.destroyed) return;
      if (info.locked) return askPassword(proof ? 'The password changed; enter the new one.' : '');

      const site = { ...info.site, readOnly: true };
      // A public site's page needs no token: the site itself is open.
      viewer.query = site.id === token ? {} : { share: token, proof };
      frame.name(site.name || 'Shared dashboard');
      const base = `/share/${encodeURIComponent(token)}`;
      const tabs = [['Overview', base, tab === 'overview']];
      if (info.live) tabs.push(['Live', `${base}/live`, tab === 'live']);
      frame.open(site, {
        liveHref: info.live ? `${base}/live` : '',
        tabs,
        view: (feed) => (tab === 'live' && info.live ? liveView(site, feed) : overviewView(site, feed)),
      });
    };
    open();
    return frame.view;
  };
}
