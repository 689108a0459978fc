// The page an invitation's link opens: what it invites to, then sign in
// (or sign up) with the invited address and accept.
import { h, clear } from '../dom.js';
import { pb, me, signOut } from '../api.js';
import { navigate } from '../router.js';

const invitation = (token) => pb.send(`/api/analytics/invitations/${encodeURIComponent(token)}`, {});
const accept = (token) => pb.send(`/api/analytics/invitations/${encodeURIComponent(token)}/accept`, { method: 'POST' });

export function inviteView({ token }) {
  const card = h('div', { class: 'card form', 'aria-busy': 'true' }, h('p', {}, 'Loading the invitation…'));
  const err = h('p', { class: 'error', role: 'alert', hidden: true });

  invitation(token)
    .then((inv) => {
      card.removeAttribute('aria-busy');
      const as = inv.role === 'admin' ? 'an admin (statistics and settings)' : 'a member (statistics)';
      clear(card).append(h('h1', {}, `Join ${inv.site.name}`), h('p', {}, `You are invited to ${inv.site.name} as ${as}. The invitation is for ${inv.email}.`));
      const user = me();
      const next = encodeURIComponent(`/invite/${token}`);
      if (!user) {
        card.append(
          h('p', {}, `Sign in with ${inv.email} to accept, or create an account with that address.`),
          h(
            'div',
            { class: 'row' },
            h('a', { class: 'btn primary', href: `/login?next=${next}` }, 'Sign in'),
            h('a', { class: 'btn', href: `/signup?next=${next}&email=${encodeURIComponent(inv.email)}` }, 'Create an account'),
          ),
        );
      } else if ((user.email || '').toLowerCase() !== inv.email) {
        card.append(
          h('p', { class: 'error' }, `You are signed in as ${user.email || 'an administrator'}; sign in as ${inv.email} to accept.`),
          h(
            'button',
            {
              class: 'btn',
              type: 'button',
              onclick: () => {
                signOut();
                navigate(`/login?next=${next}`);
              },
            },
            'Sign out',
          ),
        );
      } else {
        const btn = h('button', { class: 'btn primary', type: 'button' }, 'Accept the invitation');
        btn.addEventListener('click', async () => {
          btn.disabled = true;
          err.hidden = true;
          try {
            const res = await accept(token);
            navigate(`/sites/${res.site}`);
          } catch (e) {
            err.textContent = e?.response?.message || 'Could not accept the invitation.';
            err.hidden = false;
            btn.disabled = false;
          }
        });
        card.append(btn, err);
      }
    })
    .catch((e) => {
      card.removeAttribute('aria-busy');
      clear(card).append(
        h('h1', {}, 'Invitation not available'),
        h('p', {}, e?.response?.message || 'This invitation does not exist, expired, was revoked or was used.'),
        h('p', {}, h('a', { href: '/' }, 'Go to your sites')),
      );
    });

  return { title: 'Invitation', el: h('section', { class: 'page auth' }, card) };
}
