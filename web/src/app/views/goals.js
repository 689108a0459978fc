// Goal management in the site settings: list, add and delete the site's
// goals through the JS SDK (the goals collection's rules decide who may).
import { h, clear, uid } from '../dom.js';
import { pb } from '../api.js';

const goals = () => pb.collection('goals');

function errorText(err) {
  const data = err?.response?.data || {};
  const details = Object.values(data).map((v) => v?.message || v).join(' ');
  return details || err?.response?.message || err?.message || 'Something went wrong.';
}

export function goalsCard(site) {
  const ids = { name: uid('goal-name'), kind: uid('goal-kind'), target: uid('goal-target') };
  const list = h('ul', { class: 'goals' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const name = h('input', { id: ids.name, required: true, maxlength: 200, placeholder: 'Signup' });
  const kind = h('select', { id: ids.kind }, h('option', { value: 'page' }, 'Page visited'), h('option', { value: 'event' }, 'Custom event'));
  const target = h('input', { id: ids.target, required: true, placeholder: '/thanks or /blog/*' });
  kind.addEventListener('change', () => (target.placeholder = kind.value === 'page' ? '/thanks or /blog/*' : 'Signup'));

  const render = (items) => {
    clear(list);
    if (!items.length) list.append(h('li', { class: 'muted' }, 'No goals yet.'));
    for (const g of items) {
      list.append(
        h(
          'li',
          {},
          h('span', {}, g.name),
          h('span', { class: 'muted' }, g.page ? ` · page ${g.page}` : ` · event ${g.event}`),
          h('button', { class: 'btn ghost small', type: 'button', 'aria-label': `Delete goal ${g.name}`, onclick: () => act(() => goals().delete(g.id)) }, 'Delete'),
        ),
      );
    }
  };
  const reload = async () => render(await goals().getFullList({ filter: pb.filter('site = {:s}', { s: site.id }), sort: 'name' }));
  const act = async (f) => {
    err.hidden = true;
    try {
      await f();
      await reload();
      return true;
    } catch (e) {
      err.textContent = errorText(e);
      err.hidden = false;
      return false;
    }
  };
  reload().catch((e) => act(() => Promise.reject(e)));

  const form = h(
    'form',
    {
      class: 'goal-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const ok = await act(() => goals().create({ site: site.id, name: name.value.trim(), [kind.value]: target.value.trim() }));
        if (ok) name.value = target.value = '';
      },
    },
    h('label', { for: ids.name }, 'Goal name'),
    name,
    h('label', { for: ids.kind }, 'Reached by'),
    kind,
    h('label', { for: ids.target }, 'Page or event'),
    target,
    h('button', { class: 'btn', type: 'submit' }, 'Add goal'),
  );
  return h(
    'div',
    { class: 'card' },
    h('h2', {}, 'Goals'),
    h('p', { class: 'muted' }, 'A visit converts when it views a matching page (* matches anything) or sends the custom event.'),
    list,
    form,
    err,
  );
}
