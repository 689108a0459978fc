// Live conversions: today's conversions per goal (in the site's time zone),
// and the toast and feed line of each conversion as it happens.
//
// A count starts from the store's figure for today (the goal breakdown) and
// adds the conversion messages received after that figure was asked for,
// each once (keyed by visitor, time and goal). Every snapshot of the live
// feed (first load, each poll, each resync and reconnect) asks the store
// again; a count never goes down, so a conversion not yet flushed to the
// store when it answered is not lost, and one it already holds is not added
// twice.
import { h, clear } from './dom.js';
import { num, place } from './format.js';
import { breakdown } from './api.js';
import { toasts } from './toasts.js';

// money formats a live message's decimal revenue ("49.90") in its currency.
export function money(amount, currency) {
  const n = Number(amount);
  if (!currency || !Number.isFinite(n)) return '';
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).format(n);
  } catch {
    return `${amount} ${currency}`;
  }
}

// conversionLine is the text of a conversion: "Signup · Berlin, Germany ·
// from news.ycombinator.com · €49.90".
export function conversionLine(m) {
  return [m.goal, place(m), m.referrer ? `from ${m.referrer}` : '', money(m.revenue, m.currency)].filter(Boolean).join(' · ');
}

export function conversionToast(m) {
  toasts.show(
    [h('span', { class: 'toast-icon', 'aria-hidden': 'true' }, '🎯'), h('div', {}, h('strong', { class: 'toast-title' }, conversionLine(m)), h('span', { class: 'toast-body' }, `Conversion on ${m.page || '/'}`))],
    { className: 'conversion' },
  );
}

export class GoalCounts {
  constructor(siteId) {
    this.siteId = siteId;
    this.base = new Map(); // goal → the store's count
    this.askedAt = -1; // when the store's count was asked for (ms)
    this.seen = new Map(); // conversion key → {goal, at}
    this.shown = new Map(); // goal → count on screen
    this.pending = null;
  }

  // refresh asks the store for today's conversions per goal.
  async refresh() {
    if (this.pending) return this.pending;
    const askedAt = Date.now();
    this.pending = breakdown(this.siteId, 'goal', { period: 'today', filters: {} }, { limit: 100 })
      .then((r) => {
        this.base = new Map((r.rows || []).map((row) => [row.value, Number(row.events) || 0]));
        this.askedAt = askedAt;
        for (const [k, c] of this.seen) if (c.at < askedAt) this.seen.delete(k);
        this.update();
      })
      .finally(() => (this.pending = null));
    return this.pending;
  }

  // add counts a conversion message once; it reports whether it was new.
  add(m) {
    const key = `${m.visitor}|${m.time}|${m.goal}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, { goal: m.goal, at: Date.now() });
    this.update();
    return true;
  }

  update() {
    const next = new Map(this.base);
    for (const c of this.seen.values()) if (c.at >= this.askedAt) next.set(c.goal, (next.get(c.goal) || 0) + 1);
    for (const [goal, n] of next) this.shown.set(goal, Math.max(n, this.shown.get(goal) || 0));
  }

  rows() {
    return [...this.shown].map(([goal, n]) => ({ goal, n })).sort((a, b) => b.n - a.n || a.goal.localeCompare(b.goal));
  }
}

// goalsPanel renders the counts into a card.
export function goalsPanel(counts) {
  const box = h('section', { class: 'card live-goals live-list', 'aria-label': 'Conversions today' });
  const render = () => {
    const rows = counts.rows();
    clear(box).append(
      h('h2', {}, 'Conversions today'),
      rows.length
        ? h('ol', {}, rows.map((r) => h('li', { dataset: { goal: r.goal } }, h('span', {}, r.goal), h('span', { class: 'num' }, num(r.n)))))
        : h('p', { class: 'muted' }, 'No conversions yet today.'),
    );
  };
  render();
  return { el: box, render };
}
