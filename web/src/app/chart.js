// A hand-rolled SVG area chart with axis labels and a tooltip that follows
// the pointer or the arrow keys. It redraws when its container resizes.
import { h, svg, clear } from './dom.js';

function niceMax(v) {
  if (v <= 0) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// lineChart({points: [{t: Date, v: number}], label, format, timeFormat, height})
export function lineChart({ points, label, format = String, timeFormat, height = 240, compare }) {
  const box = h('div', { class: 'chart' });
  const tip = h('div', { class: 'chart-tip', role: 'status', hidden: true });
  const fmtTime = timeFormat || ((t) => t.toLocaleString());
  let focus = -1;
  let width = 0;

  const draw = () => {
    width = box.clientWidth || 600;
    const pad = { l: 44, r: 12, t: 12, b: 26 };
    const w = Math.max(width - pad.l - pad.r, 10);
    const hgt = height - pad.t - pad.b;
    const max = niceMax(Math.max(0, ...points.map((p) => p.v), ...(compare || []).map((p) => p.v)));
    const x = (i) => pad.l + (points.length > 1 ? (i / (points.length - 1)) * w : w / 2);
    const y = (v) => pad.t + hgt - (v / max) * hgt;

    const grid = [];
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      grid.push(svg('line', { x1: pad.l, x2: pad.l + w, y1: y(v), y2: y(v), class: 'grid' }));
      grid.push(svg('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, format(v)));
    }
    const labels = [];
    const every = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor(w / 90))));
    points.forEach((p, i) => {
      if (i % every === 0) labels.push(svg('text', { x: x(i), y: height - 6, 'text-anchor': 'middle', class: 'axis' }, fmtTime(p.t, true)));
    });

    const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
    const area = points.length ? `${line}L${x(points.length - 1).toFixed(1)},${y(0)}L${x(0).toFixed(1)},${y(0)}Z` : '';
    const prevLine = (compare || []).slice(0, points.length).map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.v).toFixed(1)}`).join('');

    const marker = svg('circle', { r: 4, class: 'marker', visibility: 'hidden' });
    const guide = svg('line', { y1: pad.t, y2: pad.t + hgt, class: 'guide', visibility: 'hidden' });

    const chart = svg(
      'svg',
      {
        width,
        height,
        viewBox: `0 0 ${width} ${height}`,
        role: 'img',
        'aria-label': `${label}: ${points.length ? points.map((p) => format(p.v)).join(', ') : 'no data'}`,
      },
      grid,
      labels,
      prevLine ? svg('path', { d: prevLine, class: 'prev' }) : null,
      area ? svg('path', { d: area, class: 'area' }) : null,
      line ? svg('path', { d: line, class: 'line' }) : null,
      guide,
      marker,
    );

    const show = (i) => {
      focus = i;
      if (i < 0 || !points[i]) {
        tip.hidden = true;
        marker.setAttribute('visibility', 'hidden');
        guide.setAttribute('visibility', 'hidden');
        return;
      }
      const p = points[i];
      marker.setAttribute('cx', x(i));
      marker.setAttribute('cy', y(p.v));
      marker.setAttribute('visibility', 'visible');
      guide.setAttribute('x1', x(i));
      guide.setAttribute('x2', x(i));
      guide.setAttribute('visibility', 'visible');
      tip.textContent = `${fmtTime(p.t, false)}: ${format(p.v)} ${label.toLowerCase()}`;
      tip.hidden = false;
      const left = Math.min(Math.max(x(i) - 80, 0), Math.max(width - 170, 0));
      tip.style.left = `${left}px`;
    };
    chart.addEventListener('pointermove', (e) => {
      const r = chart.getBoundingClientRect();
      const rel = (e.clientX - r.left - pad.l) / w;
      show(Math.round(Math.min(Math.max(rel, 0), 1) * (points.length - 1)));
    });
    chart.addEventListener('pointerleave', () => show(-1));
    clear(box).append(chart, tip);
    if (focus >= 0) show(focus);
    box._show = show;
  };

  // Arrow keys walk the points for keyboard users.
  box.tabIndex = 0;
  box.setAttribute('aria-label', `${label} chart; use the arrow keys to read the values`);
  box.addEventListener('keydown', (e) => {
    if (!points.length) return;
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      const next = focus < 0 ? points.length - 1 : focus + (e.key === 'ArrowRight' ? 1 : -1);
      box._show(Math.min(Math.max(next, 0), points.length - 1));
    } else if (e.key === 'Escape') box._show(-1);
  });
  box.addEventListener('blur', () => box._show?.(-1));

  const ro = new ResizeObserver(() => {
    if (box.clientWidth && box.clientWidth !== width) draw();
  });
  ro.observe(box);
  requestAnimationFrame(draw);
  box.destroy = () => ro.disconnect();
  return box;
}
