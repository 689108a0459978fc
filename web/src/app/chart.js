// A hand-rolled SVG area chart with axis labels and a tooltip that follows
// the pointer or the arrow keys. It redraws when its container resizes.
import { h, svg, clear } from './dom.js';

// scale returns the y axis for values up to v: about four gridlines at a
// round step (whole numbers for counts), and the top.
function scale(v, integer) {
  const raw = Math.max(v, integer ? 4 : 1e-9) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((x) => x >= raw);
  if (integer) step = Math.max(1, Math.ceil(step));
  const top = Math.max(step, Math.ceil(v / step) * step);
  return { step, top };
}

const MINUTE = 60000;
const DAY = 1440 * MINUTE;
// Label strides for series finer than a day, in minutes; all divide a day.
const STRIDES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

// minuteOfDay reads the wall-clock minute of t in timeZone.
function minuteClock(timeZone) {
  let f;
  try {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', minute: 'numeric', hourCycle: 'h23' });
  } catch {
    f = new Intl.DateTimeFormat('en-US', { hour: 'numeric', minute: 'numeric', hourCycle: 'h23' });
  }
  return (t) => {
    const parts = f.formatToParts(t);
    const get = (type) => Number(parts.find((x) => x.type === type)?.value || 0);
    return get('hour') * 60 + get('minute');
  };
}

// tickIndexes picks the points that get an axis label: at most `max`, at
// round times of the series' time zone (every 3 hours, every 15 minutes…)
// when its buckets are shorter than a day, else every n-th bucket.
function tickIndexes(points, max, timeZone) {
  if (points.length < 2) return points.map((_, i) => i);
  const stepMs = points[1].t - points[0].t;
  const need = Math.ceil(points.length / Math.max(max, 1));
  if (stepMs < DAY) {
    const stepMin = Math.max(1, Math.round(stepMs / MINUTE));
    const stride = STRIDES.find((m) => m >= stepMin && m % stepMin === 0 && m / stepMin >= need);
    if (stride) {
      const clock = minuteClock(timeZone);
      const out = [];
      points.forEach((p, i) => clock(p.t) % stride === 0 && out.push(i));
      if (out.length) return out;
    }
  }
  const n = [1, 2, 3, 6, 7, 12, 14, 28].find((k) => k >= need) || need;
  return points.map((_, i) => i).filter((i) => i % n === 0);
}

// summary is the chart's text alternative: every value of a short series,
// the peak and the latest of a long one.
function summary(label, points, format) {
  if (!points.length) return `${label}: no data`;
  if (points.length <= 48) return `${label}: ${points.map((p) => format(p.v)).join(', ')}`;
  const peak = Math.max(...points.map((p) => p.v));
  return `${label}: peak ${format(peak)}, latest ${format(points[points.length - 1].v)}`;
}

// lineChart({points: [{t: Date, v: number}], label, format, timeFormat,
// timeZone (of the axis labels' alignment), height, compare (the previous
// period's points, drawn dashed under the line, bucket by bucket)})
export function lineChart({ points, label, format = String, timeFormat, timeZone, height = 240, compare }) {
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
    const values = [...points, ...(compare || [])].map((p) => p.v);
    const { step, top: max } = scale(Math.max(0, ...values), values.every(Number.isInteger));
    const x = (i) => pad.l + (points.length > 1 ? (i / (points.length - 1)) * w : w / 2);
    const y = (v) => pad.t + hgt - (v / max) * hgt;

    const grid = [];
    for (let k = 0; k * step <= max + step / 2; k++) {
      const v = k * step;
      grid.push(svg('line', { x1: pad.l, x2: pad.l + w, y1: y(v), y2: y(v), class: 'grid' }));
      grid.push(svg('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, format(v)));
    }
    const labels = [];
    for (const i of tickIndexes(points, Math.max(2, Math.floor(w / 90)), timeZone)) {
      labels.push(svg('text', { x: x(i), y: height - 6, 'text-anchor': 'middle', class: 'axis' }, fmtTime(points[i].t, true)));
    }

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
        'aria-label': summary(label, points, format),
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
      const prev = compare?.[i];
      tip.textContent = `${fmtTime(p.t, false)}: ${format(p.v)} ${label.toLowerCase()}${prev ? `; previous period ${format(prev.v)}` : ''}`;
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
