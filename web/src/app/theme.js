// Light, dark or the system's choice; remembered in this browser.
import { h } from './dom.js';
import { local } from './storage.js';

const KEY = 'pl_theme';
const order = ['auto', 'light', 'dark'];
const labels = { auto: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' };
const icons = { auto: '◐', light: '☀', dark: '☾' };
const listeners = new Set();

export function initTheme() {
  apply(local.getItem(KEY) || 'auto');
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => listeners.forEach((f) => f(isDark())));
}

function apply(mode) {
  document.documentElement.dataset.theme = mode;
  listeners.forEach((f) => f(isDark()));
}

export function isDark() {
  const mode = document.documentElement.dataset.theme;
  return mode === 'dark' || (mode === 'auto' && matchMedia('(prefers-color-scheme: dark)').matches);
}

export function onThemeChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function themeToggle() {
  const btn = h('button', { class: 'btn ghost icon', type: 'button' });
  const show = () => {
    const mode = document.documentElement.dataset.theme;
    btn.textContent = icons[mode];
    btn.setAttribute('aria-label', labels[mode]);
    btn.title = labels[mode];
  };
  btn.addEventListener('click', () => {
    const mode = order[(order.indexOf(document.documentElement.dataset.theme) + 1) % order.length];
    local.setItem(KEY, mode);
    apply(mode);
    show();
  });
  show();
  return btn;
}
