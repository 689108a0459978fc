// Saved segments: the overview's filters under a name, personal or shared
// with the site's readers (the `segments` collection; its rules decide who
// sees and removes what, this menu only hides what they would refuse).
import { h, clear, uid } from '../dom.js';
import { pb, me } from '../api.js';
import { toasts } from '../toasts.js';

const SEGMENTS = 'pocketlytics_segments';

// values reads a stored value: an array, or a string with the API's `|`
// alternatives and `\` escapes (a segment saved through the REST API).
function values(v) {
  if (Array.isArray(v)) return v.map(String);
  const out = [''];
  const s = String(v ?? '');
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) out[out.length - 1] += s[++i];
    else if (s[i] === '|') out.push('');
    else out[out.length - 1] += s[i];
  }
  return out;
}

const toFilters = (stored) => (Array.isArray(stored) ? stored : []).map(([dim, op, v]) => ({ dim, op, values: values(v) }));

// segmentMenu lists the site's segments to apply (onApply(filters)) or
// delete, and saves the current filters as a new one.
export function segmentMenu({ site, filters, onApply }) {
  const user = me();
  if (site.readOnly || !user) return null;
  const manager = site.owner === user.id || (site.admins || []).includes(user.id);
  const list = h('ul', { class: 'segment-list' }, h('li', { class: 'muted' }, 'Loading…'));
  const ids = { name: uid('segment-name'), shared: uid('segment-shared') };
  const name = h('input', { id: ids.name, type: 'text', required: true, maxlength: 200, autocomplete: 'off' });
  const shared = h('input', { id: ids.shared, type: 'checkbox' });
  const menu = h(
    'details',
    { class: 'segment-menu' },
    h('summary', { class: 'btn ghost small' }, 'Segments'),
    h(
      'div',
      { class: 'card segment-card' },
      list,
      filters.length
        ? h(
            'form',
            {
              class: 'segment-save',
              onsubmit: async (e) => {
                e.preventDefault();
                try {
                  await pb.collection(SEGMENTS).create({
                    site: site.id,
                    owner: user.id,
                    name: name.value.trim(),
                    shared: shared.checked,
                    filters: filters.map((f) => [f.dim, f.op, f.values]),
                  });
                  name.value = '';
                  load();
                } catch (err) {
                  toasts.show(`Could not save the segment: ${err.message}`, { className: 'error' });
                }
              },
            },
            h('label', { for: ids.name }, 'Save these filters as'),
            name,
            h('label', { class: 'check' }, shared, ' Share with everyone who reads this site'),
            h('button', { class: 'btn small', type: 'submit' }, 'Save segment'),
          )
        : h('p', { class: 'muted' }, 'Add filters to save them as a segment.'),
    ),
  );

  const load = () =>
    pb
      .collection(SEGMENTS)
      .getFullList({ filter: pb.filter('site = {:id}', { id: site.id }), sort: 'name' })
      .then((segments) => {
        clear(list);
        if (!segments.length) list.append(h('li', { class: 'muted' }, 'No segments yet.'));
        for (const s of segments) {
          const deletable = s.owner === user.id || (s.shared && manager);
          list.append(
            h(
              'li',
              {},
              h('button', { class: 'btn ghost small segment-apply', type: 'button', onclick: () => ((menu.open = false), onApply(toFilters(s.filters))) }, s.name),
              s.shared ? h('span', { class: 'muted' }, ' shared') : null,
              deletable
                ? h(
                    'button',
                    {
                      class: 'btn ghost small',
                      type: 'button',
                      'aria-label': `Delete segment ${s.name}`,
                      onclick: () =>
                        pb
                          .collection(SEGMENTS)
                          .delete(s.id)
                          .then(load)
                          .catch((err) => toasts.show(`Could not delete the segment: ${err.message}`, { className: 'error' })),
                    },
                    '×',
                  )
                : null,
            ),
          );
        }
      })
      .catch((err) => clear(list).append(h('li', { class: 'error' }, `Could not load the segments: ${err.message}`)));
  menu.addEventListener('toggle', () => menu.open && load());
  return menu;
}
