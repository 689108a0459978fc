// Who sees and manages a site: its owner, admins and members, and the
// pending invitations (see docs/API.md, "Roles and invitations"). The owner
// invites admins and members, changes roles, removes people and hands the
// site over; an admin invites and removes members.
import { h, clear, uid } from '../dom.js';
import { pb, sites, me, isSuperuser } from '../api.js';
import { errorText } from './settings.js';

const INVITATIONS = 'pocketlytics_invitations';

export const team = {
  people: (siteId) => pb.send(`/api/analytics/sites/${encodeURIComponent(siteId)}/team`, {}),
  invitations: (siteId) => pb.collection(INVITATIONS).getFullList({ filter: pb.filter('site = {:id}', { id: siteId }), sort: '-created' }),
  invite: (data) => pb.collection(INVITATIONS).create(data),
  revoke: (id) => pb.collection(INVITATIONS).delete(id),
};

const roleLabel = { owner: 'Owner', admin: 'Admin', member: 'Member' };

// myRole is the signed-in user's role on the site (a superuser acts as owner).
function myRole(site) {
  const id = me()?.id;
  if (isSuperuser() || site.owner === id) return 'owner';
  return (site.admins || []).includes(id) ? 'admin' : 'member';
}

export function teamCard(site) {
  const ids = { email: uid('invite-email'), role: uid('invite-role') };
  const people = h('ul', { class: 'members team' });
  const pending = h('ul', { class: 'members invitations' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const sent = h('p', { class: 'ok', role: 'status' });
  const email = h('input', { id: ids.email, type: 'email', name: 'email', required: true, placeholder: 'name@example.com' });
  const role = h('select', { id: ids.role, name: 'role' });
  const form = h('form', { class: 'form' });

  const fail = (e) => {
    err.textContent = errorText(e);
    err.hidden = false;
  };
  const button = (label, aria, onclick) => h('button', { class: 'btn ghost small', type: 'button', 'aria-label': aria, onclick }, label);

  const change = async (data) => {
    err.hidden = true;
    try {
      site = await sites.update(site.id, data);
      await load();
    } catch (e) {
      fail(e);
    }
  };

  const personRow = (p, mine) => {
    const controls = [];
    if (p.role !== 'owner' && mine === 'owner') {
      const select = h(
        'select',
        { 'aria-label': `Role of ${p.email}`, onchange: () => change({ [`${select.value}s+`]: p.id }) },
        ['admin', 'member'].map((r) => h('option', { value: r, selected: r === p.role }, roleLabel[r])),
      );
      controls.push(
        select,
        button('Make owner', `Make ${p.email} the owner`, () => {
          if (confirm(`Hand ${site.name} over to ${p.email}? You will stay on as an admin.`)) change({ owner: p.id });
        }),
      );
    }
    if ((p.role === 'admin' && mine === 'owner') || (p.role === 'member' && mine !== 'member')) {
      controls.push(button('Remove', `Remove ${p.email}`, () => change({ [`${p.role}s-`]: p.id })));
    }
    const showRole = p.role === 'owner' || mine !== 'owner';
    return h(
      'li',
      { dataset: { user: p.id, role: p.role } },
      h('span', {}, p.email || p.id, showRole ? h('span', { class: 'muted' }, ` · ${roleLabel[p.role]}`) : null),
      h('span', { class: 'row' }, controls),
    );
  };

  const load = async () => {
    const mine = myRole(site);
    clear(role).append(h('option', { value: 'member' }, 'Member: reads the statistics'));
    if (mine === 'owner') role.append(h('option', { value: 'admin' }, 'Admin: also changes settings, goals, shares and members'));
    form.hidden = mine === 'member';
    try {
      const [list, invitations] = await Promise.all([team.people(site.id), mine === 'member' ? [] : team.invitations(site.id)]);
      clear(people).append(...list.map((p) => personRow(p, mine)));
      clear(pending);
      for (const inv of invitations) {
        pending.append(
          h(
            'li',
            { dataset: { invitation: inv.id } },
            h(
              'span',
              {},
              inv.email,
              h('span', { class: 'muted' }, ` · ${roleLabel[inv.role]}, ${new Date(inv.expires.replace(' ', 'T')) < new Date() ? 'invitation expired' : `invited until ${inv.expires.slice(0, 10)}`}`),
            ),
            button('Revoke', `Revoke the invitation of ${inv.email}`, async () => {
              try {
                await team.revoke(inv.id);
                await load();
              } catch (e) {
                fail(e);
              }
            }),
          ),
        );
      }
    } catch (e) {
      fail(e);
    }
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    sent.textContent = '';
    try {
      const inv = await team.invite({ site: site.id, email: email.value.trim(), role: role.value });
      sent.textContent = `Invitation sent to ${inv.email}.`;
      email.value = '';
      await load();
    } catch (e2) {
      fail(e2);
    }
  });
  form.append(
    h('label', { class: 'field', for: ids.email }, h('span', {}, 'Invite by e-mail')),
    email,
    h('label', { class: 'field', for: ids.role }, h('span', {}, 'Role')),
    role,
    h('div', { class: 'row' }, h('button', { class: 'btn', type: 'submit' }, 'Send invitation'), sent),
  );
  load();

  return h(
    'div',
    { class: 'card' },
    h('h2', {}, 'People'),
    h('p', { class: 'muted' }, 'Members see the statistics; admins also change the settings, goals, funnels, share links and members. People join by the link in their invitation.'),
    people,
    pending,
    form,
    err,
  );
}
