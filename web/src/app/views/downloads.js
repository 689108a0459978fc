// Download buttons of the overview: the whole export (a zip of every
// dimension's CSV) and one breakdown's CSV, for the period and filters shown.
import { h } from '../dom.js';
import { download } from '../api.js';
import { toasts } from '../toasts.js';

function button(label, aria, run) {
  const btn = h('button', { class: 'btn ghost small', type: 'button', 'aria-label': aria }, label);
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      await run();
    } catch (err) {
      toasts.show(`Download failed: ${err.message}`, { className: 'error' });
    } finally {
      btn.disabled = false;
    }
  });
  return btn;
}

export const exportButton = (site, state) =>
  button('Export', 'Export all breakdowns as CSV (zip)', () => download(site.id, 'export', state(), {}, `${site.name || site.id}-${state().period}.zip`));

export const csvButton = (site, dim, state) =>
  button('CSV', 'Download this breakdown as CSV', () =>
    download(site.id, `breakdown/${encodeURIComponent(dim())}`, state(), { format: 'csv', limit: 1000 }, `${dim()}.csv`),
  );
