// The overview's filters: [{dim, op, values}] as the API takes them, kept in
// the URL, shown as removable chips, added with a picker over every
// dimension (or a click on a breakdown row).
//
// In the URL a filter is one parameter per value: `country=DE&country=FR`
// (is), `is_not.browser=Safari`, `contains.page=/blog`; so links made
// before operators existed keep working.
import { h, clear, uid } from '../dom.js';
import { breakdown } from '../api.js';
import { PROP_PREFIX, propName } from './props.js';

export const OPERATORS = { is: 'is', is_not: 'is not', contains: 'contains' };

// isDimension accepts the API's dimensions: the named ones and event_prop:KEY.
const isDimension = (dims, d) => Object.hasOwn(dims, d) || (d.startsWith(PROP_PREFIX) && d.length > PROP_PREFIX.length);

// readFilters reads the filters of a query string.
export function readFilters(params, dims) {
  const out = [];
  for (const [key, value] of params) {
    const dot = key.indexOf('.');
    const op = dot > 0 && Object.hasOwn(OPERATORS, key.slice(0, dot)) ? key.slice(0, dot) : 'is';
    const dim = op === 'is' ? key : key.slice(dot + 1);
    if (!isDimension(dims, dim)) continue;
    const f = out.find((x) => x.dim === dim && x.op === op);
    if (f) f.values.includes(value) || f.values.push(value);
    else out.push({ dim, op, values: [value] });
  }
  return out;
}

// filterQuery is the filters' part of the URL, for setQuery.
export function filterQuery(filters) {
  return Object.fromEntries(filters.map((f) => [f.op === 'is' ? f.dim : `${f.op}.${f.dim}`, f.values]));
}

// withFilter adds a filter, in place of one of the same dimension and operator.
export function withFilter(filters, dim, op, values) {
  const rest = filters.filter((f) => !(f.dim === dim && f.op === op));
  return [...rest, { dim, op, values: [...new Set(values)] }];
}

// isFiltered reports whether a breakdown row is what an `is` filter selects.
export const isFiltered = (filters, dim, value) => filters.some((f) => f.dim === dim && f.op === 'is' && f.values.includes(value));

// describe reads a filter as text: "Country is not Germany or France".
export function describe(f, dims, label) {
  return `${dims[f.dim] || propName(f.dim)} ${OPERATORS[f.op]} ${f.values.map((v) => label(f.dim, v)).join(' or ')}`;
}

// filterBar renders the chips and the picker; onChange(filters) applies a
// new list.
export function filterBar({ siteId, state, dims, label, onChange }) {
  const { filters } = state;
  const chips = filters.map((f) => {
    const text = describe(f, dims, label);
    return h(
      'button',
      { class: 'chip', type: 'button', 'aria-label': `Remove filter ${text}`, onclick: () => onChange(filters.filter((x) => x !== f)) },
      text,
      h('span', { 'aria-hidden': 'true' }, ' ×'),
    );
  });
  const clearAll = filters.length > 1 ? h('button', { class: 'btn ghost small', type: 'button', onclick: () => onChange([]) }, 'Clear all') : null;
  return [...chips, clearAll, picker({ siteId, state, dims, label, onAdd: (dim, op, values) => onChange(withFilter(filters, dim, op, values)) })];
}

// picker is the "Filter" menu: a dimension (or a property key), an
// operator and one or more values, suggested from the dimension's
// breakdown under the current filters.
function picker({ siteId, state, dims, label, onAdd }) {
  const ids = { dim: uid('filter-dim'), key: uid('filter-key'), op: uid('filter-op'), value: uid('filter-value'), list: uid('filter-values') };
  const dim = h(
    'select',
    { id: ids.dim },
    Object.entries(dims).map(([k, l]) => h('option', { value: k }, l)),
    h('option', { value: PROP_PREFIX }, 'Event property…'),
  );
  const key = h('input', { id: ids.key, type: 'text', maxlength: 300, autocomplete: 'off', placeholder: 'e.g. plan' });
  const keyField = h('span', { class: 'field', hidden: true }, h('label', { for: ids.key }, 'Property'), key);
  const op = h('select', { id: ids.op }, Object.entries(OPERATORS).map(([k, l]) => h('option', { value: k }, l)));
  const value = h('input', { id: ids.value, type: 'text', list: ids.list, maxlength: 2000, autocomplete: 'off' });
  const suggestions = h('datalist', { id: ids.list });
  const chosen = h('ul', { class: 'filter-values', 'aria-label': 'Values' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const values = [];

  const dimension = () => (dim.value === PROP_PREFIX ? PROP_PREFIX + key.value.trim() : dim.value);
  const renderValues = () => {
    clear(chosen);
    for (const v of values) {
      chosen.append(
        h(
          'li',
          {},
          v === '' ? '(empty)' : v,
          h('button', { class: 'btn ghost small', type: 'button', 'aria-label': `Remove value ${v}`, onclick: () => (values.splice(values.indexOf(v), 1), renderValues()) }, '×'),
        ),
      );
    }
  };
  const addValue = () => {
    const v = value.value;
    if (v !== '' && !values.includes(v)) values.push(v);
    value.value = '';
    renderValues();
  };
  let suggestSeq = 0;
  const suggest = () => {
    const d = dimension();
    keyField.hidden = dim.value !== PROP_PREFIX;
    clear(suggestions);
    if (d === PROP_PREFIX) return;
    const my = ++suggestSeq;
    breakdown(siteId, d, state, { limit: 50 })
      .then((r) => {
        if (my !== suggestSeq) return;
        suggestions.append(...r.rows.map((row) => h('option', { value: String(row.value) }, label(d, row.value))));
      })
      .catch(() => {});
  };
  dim.addEventListener('change', () => {
    values.length = 0;
    renderValues();
    suggest();
  });
  key.addEventListener('change', suggest);
  value.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      addValue();
    }
  });

  const form = h(
    'form',
    {
      class: 'filter-picker card',
      onsubmit: (e) => {
        e.preventDefault();
        addValue();
        const d = dimension();
        error.hidden = true;
        if (d === PROP_PREFIX) error.textContent = 'Name the property.';
        else if (!values.length) error.textContent = 'Add a value.';
        else return onAdd(d, op.value, values);
        error.hidden = false;
      },
    },
    h('span', { class: 'field' }, h('label', { for: ids.dim }, 'Dimension'), dim),
    keyField,
    h('span', { class: 'field' }, h('label', { for: ids.op }, 'Operator'), op),
    h(
      'span',
      { class: 'field' },
      h('label', { for: ids.value }, 'Value'),
      value,
      suggestions,
      h('button', { class: 'btn ghost small', type: 'button', onclick: addValue }, 'Add value'),
    ),
    chosen,
    error,
    h('button', { class: 'btn small', type: 'submit' }, 'Apply filter'),
  );
  const menu = h('details', { class: 'filter-menu' }, h('summary', { class: 'btn ghost small' }, '+ Filter'), form);
  menu.addEventListener('toggle', () => menu.open && suggest());
  return menu;
}
