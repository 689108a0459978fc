// The live globe: cobe (WebGL) with a pin per current visitor. A pin grows
// in when a visitor arrives and fades out when they leave. The globe turns
// slowly and swings towards each new arrival, unless the user prefers
// reduced motion. Without WebGL a flat map with the same pins stands in.
import createGlobe from 'cobe';
import { h, svg, clear, reducedMotion } from './dom.js';
import { isDark, onThemeChange } from './theme.js';

const GROW_MS = 600;
const FADE_MS = 2500;
const PIN = 0.05;

function toAngles(lat, lon) {
  return [Math.PI - ((lon * Math.PI) / 180 - Math.PI / 2), (lat * Math.PI) / 180];
}

function hasLocation(v) {
  return Number.isFinite(v.lat) && Number.isFinite(v.lon) && !(v.lat === 0 && v.lon === 0);
}

function colors(dark) {
  return dark
    ? { baseColor: [0.25, 0.27, 0.36], glowColor: [0.2, 0.22, 0.35], markerColor: [0.36, 0.93, 0.63], dark: 1, mapBrightness: 5 }
    : { baseColor: [0.93, 0.94, 0.98], glowColor: [0.85, 0.87, 0.98], markerColor: [0.31, 0.27, 0.9], dark: 0, mapBrightness: 8 };
}

export function globe() {
  const pins = new Map(); // visitor → {lat, lon, born, gone}
  const wrap = h('div', { class: 'globe' });
  const canvas = h('canvas', { role: 'img', 'aria-label': 'Globe with a pin for each current visitor' });
  wrap.append(canvas);

  let phi = 0;
  let theta = 0.25;
  let target = null;
  let size = 0;
  let raf = 0;
  let g = null;
  let flat = null;

  const markers = (now) => {
    const out = [];
    for (const [key, p] of pins) {
      let s = PIN * Math.min(1, (now - p.born) / GROW_MS);
      if (reducedMotion.matches) s = p.gone ? 0 : PIN;
      if (p.gone) {
        const k = 1 - (now - p.gone) / FADE_MS;
        if (k <= 0) {
          pins.delete(key);
          continue;
        }
        s *= k;
      }
      out.push({ location: [p.lat, p.lon], size: s });
    }
    return out;
  };

  const frame = () => {
    raf = 0;
    if (!g) return;
    const now = performance.now();
    if (target && !reducedMotion.matches) {
      // Ease towards the newest arrival, the short way round.
      let d = (target[0] - phi) % (2 * Math.PI);
      if (d > Math.PI) d -= 2 * Math.PI;
      if (d < -Math.PI) d += 2 * Math.PI;
      phi += d * 0.06;
      theta += (target[1] * 0.6 - theta) * 0.06;
      if (Math.abs(d) < 0.002) target = null;
    } else if (target) {
      [phi, theta] = [target[0], target[1] * 0.6];
      target = null;
    } else if (!reducedMotion.matches) {
      phi += 0.0025;
    }
    g.update({ phi, theta, markers: markers(now) });
    const animating = !reducedMotion.matches || target || [...pins.values()].some((p) => p.gone || now - p.born < GROW_MS);
    if (animating && !document.hidden) raf = requestAnimationFrame(frame);
  };
  const kick = () => {
    if (!raf && g) raf = requestAnimationFrame(frame);
  };

  const init = () => {
    const w = wrap.clientWidth;
    if (!w || w === size) return;
    size = w;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    canvas.width = w * dpr;
    canvas.height = w * dpr;
    g?.destroy();
    try {
      g = createGlobe(canvas, {
        devicePixelRatio: dpr,
        width: w * dpr,
        height: w * dpr,
        phi,
        theta,
        diffuse: 1.2,
        mapSamples: 16000,
        scale: 1,
        markers: [],
        ...colors(isDark()),
      });
      kick();
    } catch {
      g = null;
      fallback();
    }
  };

  // Flat equirectangular map when WebGL is unavailable.
  const fallback = () => {
    if (flat) return;
    canvas.remove();
    flat = svg('svg', { viewBox: '0 0 360 180', class: 'flatmap', role: 'img', 'aria-label': 'Map with a pin for each current visitor' });
    wrap.append(flat);
    drawFlat();
  };
  const drawFlat = () => {
    if (!flat) return;
    clear(flat);
    flat.append(svg('rect', { x: 0, y: 0, width: 360, height: 180, class: 'sea' }));
    for (let lon = -150; lon <= 150; lon += 30) flat.append(svg('line', { x1: lon + 180, x2: lon + 180, y1: 0, y2: 180, class: 'grat' }));
    for (let lat = -60; lat <= 60; lat += 30) flat.append(svg('line', { y1: 90 - lat, y2: 90 - lat, x1: 0, x2: 360, class: 'grat' }));
    for (const p of pins.values()) {
      flat.append(svg('circle', { cx: p.lon + 180, cy: 90 - p.lat, r: 3, class: p.gone ? 'pin gone' : 'pin' }));
    }
  };

  // The number of live pins is exposed for tests and assistive summaries.
  const sync = () => {
    wrap.dataset.pins = [...pins.values()].filter((p) => !p.gone).length;
    drawFlat();
  };
  sync();

  const ro = new ResizeObserver(init);
  ro.observe(wrap);
  const offTheme = onThemeChange((dark) => {
    g?.update(colors(dark));
    kick();
  });
  const onVisible = () => !document.hidden && kick();
  document.addEventListener('visibilitychange', onVisible);
  reducedMotion.addEventListener('change', kick);

  return {
    el: wrap,
    add(v, { focus = true } = {}) {
      if (!hasLocation(v)) return;
      if (pins.get(v.visitor) && !pins.get(v.visitor).gone) return;
      pins.set(v.visitor, { lat: v.lat, lon: v.lon, born: focus ? performance.now() : -GROW_MS, gone: 0 });
      if (focus) target = toAngles(v.lat, v.lon);
      sync();
      kick();
    },
    remove(v) {
      const p = pins.get(v.visitor);
      if (p && !p.gone) p.gone = performance.now();
      sync();
      setTimeout(() => {
        if (pins.get(v.visitor)?.gone) pins.delete(v.visitor);
        sync();
      }, FADE_MS);
      kick();
    },
    count: () => [...pins.values()].filter((p) => !p.gone).length,
    destroy() {
      ro.disconnect();
      offTheme();
      document.removeEventListener('visibilitychange', onVisible);
      reducedMotion.removeEventListener('change', kick);
      cancelAnimationFrame(raf);
      g?.destroy();
      g = null;
    },
  };
}
