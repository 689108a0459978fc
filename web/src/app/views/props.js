// The custom event properties panel: a breakdown of the events by one
// property key (the API's event_prop:KEY dimension) under the view's
// filters, where a row adds a property filter. Filter on an event first to
// see the properties of that event.
import { h, clear, uid } from '../dom.js';
import { breakdown } from '../api.js';
import { num } from '../format.js';

export const PROP_PREFIX = 'event_prop:';

// Keys the tracker's auto-tracked events send, offered before any is typed.
const KNOWN_KEYS = ['url', 'path'];

// The key shown last, kept while the view reloads.
let lastKey = '';

// propName labels a filter dimension that is a property ("Property plan").
export function propName(dim) {
  return dim.startsWith(PROP_PREFIX) ? `Property ${dim.slice(PROP_PREFIX.length)}` : '';
}

// propsPanel renders the panel; onFilter(dimension, value) adds a filter.
export function propsPanel(siteId, state, onFilter) {
  const kid = uid('prop-key');
  const lid = uid('prop-keys');
  const keys = new Set([...KNOWN_KEYS, ...state.filters.filter((f) => f.dim.startsWith(PROP_PREFIX)).map((f) => f.dim.slice(PROP_PREFIX.length))]);
  const input = h('input', { id: kid, type: 'text', list: lid, value: lastKey, placeholder: 'e.g. plan', maxlength: 300, autocomplete: 'off' });
  const body = h('div', { class: 'panel-body' });
  // Properties of one event when the view is filtered on exactly one.
  const events = state.filters.find((f) => f.dim === 'event_name' && f.op === 'is')?.values;
  const event = events?.length === 1 ? events[0] : '';
  const el = h(
    'section',
    { class: 'card panel props-panel' },
    h('h2', {}, event ? `Properties of “${event}”` : 'Event properties'),
    h(
      'form',
      {
        class: 'prop-key',
        onsubmit: (e) => {
          e.preventDefault();
          show(input.value.trim());
        },
      },
      h('label', { for: kid }, 'Property'),
      input,
      h('datalist', { id: lid }, [...keys].map((k) => h('option', { value: k }))),
      h('button', { class: 'btn small', type: 'submit' }, 'Show'),
    ),
    body,
  );

  function show(key) {
    lastKey = key;
    clear(body);
    if (!key) {
      body.append(h('p', { class: 'muted empty-panel' }, 'Pick a property key to break the events down by its values.'));
      return;
    }
    const dim = PROP_PREFIX + key;
    body.append(h('p', { class: 'muted' }, 'Loading…'));
    breakdown(siteId, dim, state, { limit: 10, page: 1 })
      .then((r) => {
        clear(body);
        if (!r.rows.length) {
          body.append(h('p', { class: 'muted empty-panel' }, `No events with the property “${key}” in this period.`));
          return;
        }
        const max = Math.max(...r.rows.map((x) => Number(x.visitors) || 0), 1);
        body.append(
          h(
            'table',
            { class: 'breakdown' },
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, key), h('th', { scope: 'col', class: 'num' }, 'Visitors'), h('th', { scope: 'col', class: 'num' }, 'Events'))),
            h(
              'tbody',
              {},
              r.rows.map((x) =>
                h(
                  'tr',
                  { style: { '--w': `${((Number(x.visitors) || 0) / max) * 100}%` } },
                  h(
                    'td',
                    {},
                    h(
                      'button',
                      {
                        class: 'row-filter',
                        type: 'button',
                        'aria-pressed': String(state.filters.some((f) => f.dim === dim && f.op === 'is' && f.values.includes(String(x.value)))),
                        title: `Filter by ${key} ${x.value}`,
                        onclick: () => onFilter(dim, String(x.value)),
                      },
                      x.value === '' ? '(empty)' : String(x.value),
                    ),
                  ),
                  h('td', { class: 'num' }, num(x.visitors)),
                  h('td', { class: 'num' }, num(x.events)),
                ),
              ),
            ),
          ),
        );
      })
      .catch((err) => clear(body).append(h('p', { class: 'error' }, `Could not load: ${err.message}`)));
  }
  show(lastKey);
  return el;
}
