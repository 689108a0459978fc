// Tiny DOM helpers: the dashboard builds its views with plain elements.
import { url } from './router.js';

// h creates an element: h('a', {href: '/x', class: 'btn', onclick: fn}, 'text', child).
// Attributes named on* become listeners; false/null attributes are left out;
// children may be strings, nodes, arrays or null. A link's href that starts
// with one '/' is an app path (router.js), made the URL's path here.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'style' && typeof v === 'object') {
      Object.assign(el.style, v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'href' && typeof v === 'string' && v.startsWith('/') && !v.startsWith('//')) {
      el.setAttribute(k, url(v));
    } else if (k in el && typeof v !== 'string') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// svg creates an SVG element with attributes.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)');

let idSeq = 0;
export function uid(prefix = 'id') {
  return `${prefix}-${++idSeq}`;
}
