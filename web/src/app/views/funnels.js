// Funnels: the chart on the overview (visitors per step, drop-off and
// conversion from the first step), listed and answered by the analytics
// routes so a share page has it too, and their management in the
// settings through the JS SDK.
import { h, clear, uid } from '../dom.js';
import { pb, funnel, siteFunnels } from '../api.js';
import { num } from '../format.js';

const funnels = () => pb.collection('funnels');
const list = (site) => funnels().getFullList({ filter: pb.filter('site = {:s}', { s: site.id }), sort: 'name' });
const stepLabel = (s) => (s.page ? s.page : `Event: ${s.event}`);

function errorText(err) {
  const data = err?.response?.data || {};
  const details = Object.values(data).map((v) => v?.message || v).join(' ');
  return details || err?.response?.message || err?.message || 'Something went wrong.';
}

// funnelCard is the overview's funnel chart; it shows nothing when the site
// has no funnels.
export function funnelCard(site, state) {
  const el = h('section', { class: 'card panel funnel', hidden: true });
  const pick = h('select', { 'aria-label': 'Funnel' });
  const body = h('div', { class: 'panel-body' });
  const show = async () => {
    clear(body).append(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const r = await funnel(site.id, pick.value, state);
      const first = r.steps[0]?.visitors || 0;
      clear(body).append(
        h(
          'ol',
          { class: 'funnel-steps' },
          r.steps.map((s) =>
            h(
              'li',
              { style: { '--w': `${first ? (s.visitors / first) * 100 : 0}%` } },
              h('span', { class: 'funnel-label' }, stepLabel(s)),
              h('span', { class: 'funnel-visitors' }, `${num(s.visitors)} visitors`),
              h('span', { class: 'funnel-rate' }, `${s.conversionRate}%`),
              s.dropOff ? h('span', { class: 'funnel-drop muted' }, `−${num(s.dropOff)}`) : null,
            ),
          ),
        ),
      );
    } catch (e) {
      clear(body).append(h('p', { class: 'error' }, `Could not load: ${e.message}`));
    }
  };
  pick.addEventListener('change', show);
  siteFunnels(site.id)
    .then((items) => {
      if (!items.length) return;
      for (const f of items) pick.append(h('option', { value: f.id }, f.name));
      el.hidden = false;
      clear(el).append(h('h2', {}, 'Funnel'), pick, body);
      show();
    })
    .catch((e) => {
      el.hidden = false;
      clear(el).append(h('h2', {}, 'Funnel'), h('p', { class: 'error' }, `Could not load the funnels: ${e.message}`));
    });
  return el;
}

// parseSteps reads one step a line: "/pricing" (a page pattern) or
// "event: signup".
export function parseSteps(text) {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => (/^event:/i.test(l) ? { event: l.slice(6).trim() } : { page: l }));
}

export function funnelsSettingsCard(site) {
  const ids = { name: uid('funnel-name'), steps: uid('funnel-steps') };
  const items = h('ul', { class: 'funnels' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const name = h('input', { id: ids.name, required: true, maxlength: 200, placeholder: 'Signup' });
  const steps = h('textarea', { id: ids.steps, required: true, rows: 4, placeholder: '/pricing\nevent: Signup' });
  const render = (fs) => {
    clear(items);
    if (!fs.length) items.append(h('li', { class: 'muted' }, 'No funnels yet.'));
    for (const f of fs) {
      items.append(
        h(
          'li',
          {},
          h('span', {}, f.name),
          h('span', { class: 'muted' }, ` · ${(f.steps || []).map(stepLabel).join(' → ')}`),
          h('button', { class: 'btn ghost small', type: 'button', 'aria-label': `Delete funnel ${f.name}`, onclick: () => act(() => funnels().delete(f.id)) }, 'Delete'),
        ),
      );
    }
  };
  const act = async (f) => {
    err.hidden = true;
    try {
      await f();
      render(await list(site));
      return true;
    } catch (e) {
      err.textContent = errorText(e);
      err.hidden = false;
      return false;
    }
  };
  act(() => Promise.resolve());
  const form = h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const ok = await act(() => funnels().create({ site: site.id, name: name.value.trim(), steps: parseSteps(steps.value) }));
        if (ok) name.value = steps.value = '';
      },
    },
    h('label', { for: ids.name }, 'Funnel name'),
    name,
    h('label', { for: ids.steps }, 'Steps, one a line (a page, or event: Name)'),
    steps,
    h('button', { class: 'btn', type: 'submit' }, 'Add funnel'),
  );
  return h('div', { class: 'card' }, h('h2', {}, 'Funnels'), items, form, err);
}
