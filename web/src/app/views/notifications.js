// A site's email report (each user's own choice) and its traffic alert
// (the owner's and admins'), see docs/API.md, "Reports and alerts".
import { h, uid } from '../dom.js';
import { pb, me, isSuperuser } from '../api.js';
import { errorText } from './settings.js';

const REPORTS = 'pocketlytics_reports';
const ALERTS = 'pocketlytics_alerts';

const ofSite = (collection, siteId) =>
  pb.collection(collection).getFullList({ filter: pb.filter('site = {:id}', { id: siteId }) }).then((rows) => rows[0] || null);

function reportCard(site) {
  const id = uid('report');
  const status = h('p', { class: 'ok', role: 'status' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const select = h(
    'select',
    { id, name: 'report', disabled: true },
    [['', 'Off'], ['weekly', 'Weekly (Mondays)'], ['monthly', 'Monthly (on the 1st)']].map(([v, label]) => h('option', { value: v }, label)),
  );
  let row = null;
  ofSite(REPORTS, site.id)
    .then((r) => {
      row = r;
      select.value = r?.frequency || '';
      select.disabled = false;
    })
    .catch((e) => {
      err.textContent = errorText(e);
      err.hidden = false;
    });
  select.addEventListener('change', async () => {
    err.hidden = true;
    status.textContent = '';
    select.disabled = true;
    try {
      const frequency = select.value;
      if (!frequency) {
        if (row) await pb.collection(REPORTS).delete(row.id);
        row = null;
      } else {
        row = row ? await pb.collection(REPORTS).update(row.id, { frequency }) : await pb.collection(REPORTS).create({ site: site.id, frequency });
      }
      status.textContent = 'Saved.';
    } catch (e) {
      select.value = row?.frequency || '';
      err.textContent = errorText(e);
      err.hidden = false;
    } finally {
      select.disabled = false;
    }
  });
  return h(
    'div',
    { class: 'card report-card' },
    h('h2', {}, 'Email report'),
    h('label', { class: 'field', for: id }, h('span', {}, `Send me a report of ${site.name}`)),
    select,
    h('p', { class: 'hint' }, 'Visitors, pageviews, top pages and sources, compared with the period before. Every mail has an unsubscribe link.'),
    err,
    status,
  );
}

function alertCard(site) {
  const ids = { threshold: uid('threshold'), email: uid('alert-email'), webhook: uid('webhook') };
  const threshold = h('input', { id: ids.threshold, name: 'threshold', type: 'number', min: 1, step: 1, required: true });
  const email = h('input', { id: ids.email, name: 'email', type: 'checkbox', checked: true });
  const webhook = h('input', { id: ids.webhook, name: 'webhook', type: 'url', placeholder: 'https://hooks.example.com/…' });
  const status = h('p', { class: 'ok', role: 'status' });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const remove = h('button', { class: 'btn ghost', type: 'button', hidden: true }, 'Remove alert');
  let row = null;
  const show = (r) => {
    row = r;
    threshold.value = r?.threshold || '';
    email.checked = r ? !!r.email : true;
    webhook.value = r?.webhook || '';
    remove.hidden = !r;
    status.textContent = r?.lastFired ? `Last fired ${new Date(r.lastFired.replace(' ', 'T')).toLocaleString()}.` : '';
  };
  const fail = (e) => {
    err.textContent = errorText(e);
    err.hidden = false;
  };
  ofSite(ALERTS, site.id).then(show).catch(fail);
  remove.addEventListener('click', async () => {
    err.hidden = true;
    try {
      await pb.collection(ALERTS).delete(row.id);
      show(null);
      status.textContent = 'Removed.';
    } catch (e) {
      fail(e);
    }
  });
  return h(
    'form',
    {
      class: 'card form alert-card',
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        const data = { threshold: Number(threshold.value), email: email.checked, webhook: webhook.value.trim() };
        try {
          show(row ? await pb.collection(ALERTS).update(row.id, data) : await pb.collection(ALERTS).create({ site: site.id, ...data }));
          status.textContent = 'Saved.';
        } catch (e2) {
          fail(e2);
        }
      },
    },
    h('h2', {}, 'Traffic alert'),
    h('p', { class: 'hint' }, 'When the live visitor count reaches the threshold, at most once an hour (checked every minute).'),
    h('label', { class: 'field', for: ids.threshold }, h('span', {}, 'Live visitors')),
    threshold,
    h('label', { class: 'row', for: ids.email }, email, h('span', {}, 'Email the owner and admins')),
    h('label', { class: 'field', for: ids.webhook }, h('span', {}, 'Webhook (optional, receives a JSON POST)')),
    webhook,
    err,
    h('div', { class: 'row' }, h('button', { class: 'btn primary', type: 'submit' }, 'Save alert'), remove, status),
  );
}

// notificationCards are the report choice and, for the owner and admins,
// the alert.
export function notificationCards(site) {
  const id = me()?.id;
  const manager = isSuperuser() || site.owner === id || (site.admins || []).includes(id);
  return [isSuperuser() ? null : reportCard(site), manager ? alertCard(site) : null];
}
