// Sharing settings of a site: the public switch, share links and the
// owner's API keys for the site (see docs/API.md, "Access").
import { h, clear, uid } from '../dom.js';
import { sites } from '../api.js';
import { shares, apiKeys, shareURL } from '../access.js';
import { errorText } from './settings.js';

function copyButton(text) {
  const btn = h(
    'button',
    {
      class: 'btn ghost small',
      type: 'button',
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text());
          btn.textContent = 'Copied';
        } catch {
          btn.textContent = 'Select and copy';
        }
        setTimeout(() => (btn.textContent = 'Copy'), 2000);
      },
    },
    'Copy',
  );
  return btn;
}

function publicCard(site) {
  const id = uid('public');
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const link = h('p', { class: 'hint' });
  const box = h('input', { id, type: 'checkbox', name: 'public', checked: !!site.public });
  const show = () => {
    clear(link);
    if (box.checked) link.append('Anyone can open ', h('a', { href: `/share/${site.id}`, class: 'public-link' }, shareURL(site.id)));
    else link.append('Only you, members, share links and API keys see the statistics.');
  };
  box.addEventListener('change', async () => {
    err.hidden = true;
    try {
      site = await sites.update(site.id, { public: box.checked });
    } catch (e) {
      box.checked = !box.checked;
      err.textContent = errorText(e);
      err.hidden = false;
    }
    show();
  });
  show();
  return h(
    'div',
    { class: 'card' },
    h('h2', {}, 'Public dashboard'),
    h('label', { class: 'row', for: id }, box, h('span', {}, 'Anyone with the link may see the statistics (not the settings)')),
    link,
    err,
  );
}

function sharesCard(site) {
  const ids = { label: uid('label'), pw: uid('pw'), exp: uid('exp'), live: uid('live') };
  const list = h('ul', { class: 'members shares' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const label = h('input', { id: ids.label, name: 'label', maxlength: 200, placeholder: 'e.g. Client report' });
  const password = h('input', { id: ids.pw, name: 'password', type: 'password', autocomplete: 'new-password', maxlength: 71 });
  const expires = h('input', { id: ids.exp, name: 'expires', type: 'date' });
  const live = h('input', { id: ids.live, name: 'live', type: 'checkbox' });

  const fail = (e) => {
    err.textContent = errorText(e);
    err.hidden = false;
  };
  const load = async () => {
    try {
      const rows = await shares.list(site.id);
      clear(list);
      if (!rows.length) list.append(h('li', { class: 'muted' }, 'No share links yet.'));
      for (const s of rows) {
        const link = shareURL(s.token);
        const flags = [s.live ? 'live' : '', s.expires ? `until ${s.expires.slice(0, 10)}` : ''].filter(Boolean).join(', ');
        list.append(
          h(
            'li',
            { dataset: { share: s.id } },
            h('span', {}, h('strong', {}, s.label || 'Share link'), flags ? ` (${flags})` : '', h('br'), h('a', { href: link, class: 'share-link' }, link)),
            h(
              'span',
              { class: 'row' },
              copyButton(() => link),
              h(
                'button',
                {
                  class: 'btn ghost small',
                  type: 'button',
                  'aria-label': `Revoke ${s.label || 'share link'}`,
                  onclick: async () => {
                    try {
                      await shares.remove(s.id);
                      load();
                    } catch (e) {
                      fail(e);
                    }
                  },
                },
                'Revoke',
              ),
            ),
          ),
        );
      }
    } catch (e) {
      fail(e);
    }
  };
  load();

  return h(
    'div',
    { class: 'card' },
    h('h2', {}, 'Share links'),
    h('p', { class: 'muted' }, 'A link opens this site’s dashboard read-only, without an account. Revoking it closes it at once, also for open pages.'),
    list,
    h(
      'form',
      {
        class: 'form',
        onsubmit: async (e) => {
          e.preventDefault();
          err.hidden = true;
          const data = { site: site.id, label: label.value.trim(), live: live.checked };
          if (password.value) data.password = password.value;
          if (expires.value) data.expires = new Date(`${expires.value}T23:59:59`).toISOString();
          try {
            await shares.create(data);
            label.value = password.value = expires.value = '';
            live.checked = false;
            load();
          } catch (e2) {
            fail(e2);
          }
        },
      },
      h('label', { class: 'field', for: ids.label }, h('span', {}, 'Label')),
      label,
      h('label', { class: 'field', for: ids.pw }, h('span', {}, 'Password (optional)')),
      password,
      h('label', { class: 'field', for: ids.exp }, h('span', {}, 'Expires after (optional)')),
      expires,
      h('label', { class: 'row', for: ids.live }, live, h('span', {}, 'Include the live view')),
      h('div', { class: 'row' }, h('button', { class: 'btn', type: 'submit' }, 'Create link')),
    ),
    err,
  );
}

function keysCard(site) {
  const nameId = uid('keyname');
  const list = h('ul', { class: 'members api-keys' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const fresh = h('div', { class: 'new-key', hidden: true });
  const name = h('input', { id: nameId, name: 'name', required: true, maxlength: 100, placeholder: 'e.g. Weekly export script' });
  const fail = (e) => {
    err.textContent = errorText(e);
    err.hidden = false;
  };
  const load = async () => {
    try {
      const rows = await apiKeys.list(site.id);
      clear(list);
      if (!rows.length) list.append(h('li', { class: 'muted' }, 'No API keys for this site.'));
      for (const k of rows) {
        list.append(
          h(
            'li',
            { dataset: { key: k.id } },
            h('span', {}, h('strong', {}, k.name), ' ', h('code', {}, `${k.hint}…`), h('span', { class: 'muted' }, k.lastUsed ? ` used ${k.lastUsed.slice(0, 16)}` : ' never used')),
            h(
              'button',
              {
                class: 'btn ghost small',
                type: 'button',
                'aria-label': `Delete key ${k.name}`,
                onclick: async () => {
                  try {
                    await apiKeys.remove(k.id);
                    load();
                  } catch (e) {
                    fail(e);
                  }
                },
              },
              'Delete',
            ),
          ),
        );
      }
    } catch (e) {
      fail(e);
    }
  };
  load();

  return h(
    'div',
    { class: 'card' },
    h('h2', {}, 'API keys'),
    h('p', { class: 'muted' }, 'Scripts read this site’s statistics with ', h('code', {}, 'Authorization: Bearer KEY'), '. A key reads the analytics API only.'),
    list,
    fresh,
    h(
      'form',
      {
        class: 'row',
        onsubmit: async (e) => {
          e.preventDefault();
          err.hidden = true;
          try {
            const k = await apiKeys.create({ name: name.value.trim(), sites: [site.id] });
            name.value = '';
            const pre = h('pre', { class: 'code', tabindex: '0', 'aria-label': 'New API key' }, k.key);
            clear(fresh).append(h('p', { role: 'status' }, 'Copy the key now: it is not shown again.'), h('div', { class: 'code-row' }, pre, copyButton(() => k.key)));
            fresh.hidden = false;
            load();
          } catch (e2) {
            fail(e2);
          }
        },
      },
      h('label', { class: 'sr-only', for: nameId }, 'Key name'),
      name,
      h('button', { class: 'btn', type: 'submit' }, 'Create key'),
    ),
    err,
  );
}

function embedCard(site) {
  const id = uid('embed');
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const saved = h('p', { class: 'ok', role: 'status' });
  const input = h('input', { id, name: 'embed_origins', placeholder: 'https://status.example.com', value: (site.embed_origins || []).join(', ') });
  return h(
    'form',
    {
      class: 'card form',
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        saved.textContent = '';
        const origins = input.value.split(/[\s,]+/).filter(Boolean);
        try {
          site = await sites.update(site.id, { embed_origins: origins });
          input.value = (site.embed_origins || []).join(', ');
          saved.textContent = 'Saved.';
        } catch (e2) {
          err.textContent = errorText(e2);
          err.hidden = false;
        }
      },
    },
    h('h2', {}, 'Embedding'),
    h('label', { class: 'field', for: id }, h('span', {}, 'Sites that may show share links in an iframe')),
    input,
    h('p', { class: 'hint' }, 'Origins separated by commas. Framed, a share link shows a compact layout; no other page of the dashboard can be framed.'),
    err,
    h('div', { class: 'row' }, h('button', { class: 'btn', type: 'submit' }, 'Save origins'), saved),
  );
}

// sharingCards are the settings' sharing section.
export function sharingCards(site) {
  return [h('h2', { class: 'section' }, 'Sharing'), publicCard(site), sharesCard(site), embedCard(site), keysCard(site)];
}
