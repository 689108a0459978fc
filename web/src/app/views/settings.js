// Site settings: the tracker snippet, name/domains/time zone, people,
// reports and alerts, and deletion.
import { h, uid } from '../dom.js';
import { sites, siteDomains, parseDomains, findUser, me, isSuperuser } from '../api.js';
import { navigate } from '../router.js';
import { goalsCard } from './goals.js';
import { funnelsSettingsCard } from './funnels.js';
import { sharingCards } from './sharing.js';
import { teamCard } from './team.js';
import { notificationCards } from './notifications.js';

function timezones() {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return ['UTC'];
  }
}

export function errorText(err) {
  const data = err?.response?.data || {};
  const details = Object.entries(data)
    .map(([k, v]) => `${k}: ${v?.message || v}`)
    .join('; ');
  return details || err?.response?.message || err?.message || 'Something went wrong.';
}

// siteForm edits (site given) or creates (site null) a site.
export function siteForm(site, { submitLabel = 'Save', onSaved } = {}) {
  const ids = { name: uid('name'), domains: uid('domains'), tz: uid('tz'), hint: uid('hint') };
  const name = h('input', { id: ids.name, name: 'name', required: true, maxlength: 100, value: site?.name || '' });
  const domains = h('input', {
    id: ids.domains,
    name: 'domains',
    required: true,
    placeholder: 'example.com, www.example.com',
    'aria-describedby': ids.hint,
    value: siteDomains(site).join(', '),
  });
  const localTz = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const current = site?.timezone || localTz;
  const tz = h(
    'select',
    { id: ids.tz, name: 'timezone' },
    [...new Set(['UTC', ...timezones()])].map((z) => h('option', { value: z, selected: z === current }, z)),
  );
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const saved = h('p', { class: 'ok', role: 'status' });
  const submit = h('button', { class: 'btn primary', type: 'submit' }, submitLabel);
  // A superuser creates sites on behalf of a user, who owns them.
  const ownerId = uid('owner');
  const owner = !site && isSuperuser() ? h('input', { id: ownerId, name: 'owner', required: true, placeholder: 'user@example.com' }) : null;

  return h(
    'form',
    {
      class: 'card form',
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        saved.textContent = '';
        const data = { name: name.value.trim(), domains: parseDomains(domains.value), timezone: tz.value };
        if (!data.domains.length) {
          err.textContent = 'Add at least one domain.';
          err.hidden = false;
          return;
        }
        submit.disabled = true;
        try {
          if (owner) data.owner = (await findUser(owner.value)).id;
          else if (!site) data.owner = me()?.id;
          const result = site ? await sites.update(site.id, data) : await sites.create(data);
          saved.textContent = 'Saved.';
          onSaved?.(result);
        } catch (e2) {
          err.textContent = errorText(e2);
          err.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('label', { class: 'field', for: ids.name }, h('span', {}, 'Name')),
    name,
    h('label', { class: 'field', for: ids.domains }, h('span', {}, 'Domains')),
    domains,
    h('p', { class: 'hint', id: ids.hint }, 'Host names whose pages may send hits, separated by commas.'),
    h('label', { class: 'field', for: ids.tz }, h('span', {}, 'Time zone of the reports')),
    tz,
    owner ? [h('label', { class: 'field', for: ownerId }, h('span', {}, 'Owner (e-mail or user id)')), owner] : null,
    err,
    h('div', { class: 'row' }, submit, saved),
  );
}

// snippet shows the tracker tag with a copy button and whether hits arrive.
export function snippet(site, live) {
  const code = `<script defer src="${location.origin}/t.js" data-site="${site.id}"></script>`;
  const status = h('p', { class: 'waiting', role: 'status' });
  const copyBtn = h(
    'button',
    {
      class: 'btn',
      type: 'button',
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(code);
        } catch {
          const range = document.createRange();
          range.selectNodeContents(pre);
          getSelection().removeAllRanges();
          getSelection().addRange(range);
          document.execCommand?.('copy');
        }
        copyBtn.textContent = 'Copied';
        setTimeout(() => (copyBtn.textContent = 'Copy'), 2000);
      },
    },
    'Copy',
  );
  const pre = h('pre', { class: 'code', tabindex: '0', 'aria-label': 'Tracker snippet' }, code);
  const show = (receiving) => {
    status.classList.toggle('receiving', receiving);
    status.textContent = receiving ? 'Receiving data: the tracker works.' : 'Waiting for the first hit…';
  };
  show(false);
  const off = live?.onData(() => show(true));

  const el = h(
    'div',
    { class: 'card snippet' },
    h('h2', {}, 'Tracker snippet'),
    h('p', {}, 'Paste this into the ', h('code', {}, '<head>'), ' of every page of the site. It sets no cookies.'),
    h('div', { class: 'code-row' }, pre, copyBtn),
    status,
  );
  return { el, destroy: () => off?.() };
}

function dangerCard(site) {
  const dialog = h(
    'dialog',
    { class: 'card', 'aria-labelledby': 'del-title' },
    h('h2', { id: 'del-title' }, `Delete ${site.name}?`),
    h('p', {}, 'The site and its settings are removed; the tracker stops being accepted. This cannot be undone.'),
    h(
      'form',
      { method: 'dialog', class: 'row' },
      h('button', { class: 'btn', value: 'cancel', autofocus: true }, 'Cancel'),
      h('button', { class: 'btn danger', value: 'delete' }, 'Delete site'),
    ),
  );
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'delete') return;
    try {
      await sites.remove(site.id);
      navigate('/');
    } catch (e) {
      err.textContent = errorText(e);
      err.hidden = false;
    }
  });
  return h(
    'div',
    { class: 'card danger-zone' },
    h('h2', {}, 'Delete site'),
    h('button', { class: 'btn danger', type: 'button', onclick: () => dialog.showModal() }, 'Delete this site…'),
    err,
    dialog,
  );
}

export function settingsView(site, live, onRenamed) {
  const snip = snippet(site, live);
  const created = new URLSearchParams(location.search).has('created');
  const el = h(
    'div',
    { class: 'settings' },
    created ? h('p', { class: 'ok', role: 'status' }, 'Site created. Add the snippet below to start measuring.') : null,
    snip.el,
    h('h2', { class: 'section' }, 'General'),
    siteForm(site, { onSaved: (s) => onRenamed?.(s) }),
    teamCard(site),
    notificationCards(site),
    goalsCard(site),
    funnelsSettingsCard(site),
    sharingCards(site),
    dangerCard(site),
  );
  return { el, destroy: snip.destroy };
}
