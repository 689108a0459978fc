// Toasts: short notices stacked in a corner. Visitor arrivals come faster
// than anyone can read when a site is busy, so at most MAX are shown and the
// rest are summed up in one "+N more visitors" notice.
import { h } from './dom.js';
import { flag, place, deviceIcon, capitalize } from './format.js';

const MAX = 3;
const TTL = 6000;

class Toasts {
  constructor() {
    this.el = h('section', { class: 'toasts', 'aria-live': 'polite', 'aria-label': 'Notifications' });
    this.more = null;
    this.moreCount = 0;
  }

  items() {
    return [...this.el.querySelectorAll('.toast:not(.more):not(.leaving)')];
  }

  show(content, { ttl = TTL, className = '' } = {}) {
    const t = h('div', { class: `toast ${className}`, role: 'status' }, content);
    this.el.prepend(t);
    this.expire(t, ttl);
    return t;
  }

  expire(t, ttl) {
    clearTimeout(t._timer);
    const arm = () => (t._timer = setTimeout(() => this.dismiss(t), ttl));
    // Hovering or focusing keeps a toast readable.
    t.onmouseenter = () => clearTimeout(t._timer);
    t.onmouseleave = arm;
    arm();
  }

  dismiss(t) {
    if (!t.isConnected) return;
    t.classList.add('leaving');
    const done = () => {
      t.remove();
      if (t === this.more) {
        this.more = null;
        this.moreCount = 0;
      }
    };
    if (matchMedia('(prefers-reduced-motion: reduce)').matches) done();
    else setTimeout(done, 250);
  }

  visitor(v) {
    if (this.items().length >= MAX) {
      this.moreCount++;
      const text = `+${this.moreCount} more visitor${this.moreCount === 1 ? '' : 's'}`;
      if (this.more?.isConnected) {
        this.more.querySelector('.toast-title').textContent = text;
        this.expire(this.more, TTL);
      } else {
        this.more = h('div', { class: 'toast more', role: 'status' }, h('span', { class: 'toast-icon', 'aria-hidden': 'true' }, '👥'), h('div', {}, h('strong', { class: 'toast-title' }, text)));
        this.el.append(this.more);
        this.expire(this.more, TTL);
      }
      return;
    }
    const device = capitalize(v.device || 'unknown device');
    this.show([
      h('span', { class: 'toast-icon', 'aria-hidden': 'true' }, flag(v.country)),
      h(
        'div',
        {},
        h('strong', { class: 'toast-title' }, `New visitor from ${place(v)}`),
        h('span', { class: 'toast-body' }, h('span', { 'aria-hidden': 'true' }, deviceIcon(v.device), ' '), `${device} · entered on ${v.entry || v.path || '/'}`),
      ),
    ], { className: 'visitor' });
  }

  clear() {
    this.el.replaceChildren();
    this.more = null;
    this.moreCount = 0;
  }
}

export const toasts = new Toasts();
