// Live conversions: today's conversions per goal (in the site's time zone),
// and the toast and feed line of each conversion as it happens.
//
// A goal's count starts from the store's figure for today (the goal
// breakdown) and goes up by one for each conversion message, counted once
// (keyed by visitor, time and goal). Every snapshot of the live feed (first
// load, each poll, each resync and reconnect) asks the store again and takes
// its figure plus the messages received since it was asked for, when that
// is more: a conversion that reached the screen but not yet the store is not
// lost, one the store already holds is not added twice.
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

// KEEP_MS is how long a conversion's key is kept to recognise it again.
const KEEP_MS = 10 * 60 * 1000;

export class GoalCounts {
  constructor(siteId, timeZone) {
    this.siteId = siteId;
    this.day = new Intl.DateTimeFormat('en-CA', { timeZone });
    this.today = this.day.format(new Date());
    this.seen = new Map(); // conversion key → {goal, at}
    this.shown = new Map(); // goal → count on screen
    this.pending = null;
  }

  // refresh asks the store for today's conversions per goal.
  refresh() {
    if (this.pending) return this.pending;
    const askedAt = Date.now();
    this.pending = breakdown(this.siteId, 'goal', { period: 'today', filters: [] }, { limit: 100 })
      .then((r) => {
        const today = this.day.format(new Date(askedAt));
        if (today !== this.today) {
          this.today = today;
          this.shown.clear();
        }
        const next = new Map((r.rows || []).map((row) => [row.value, Number(row.events) || 0]));
        for (const [k, c] of this.seen) {
          if (c.at < askedAt - KEEP_MS) this.seen.delete(k);
          else if (c.at >= askedAt) next.set(c.goal, (next.get(c.goal) || 0) + 1);
        }
        const recent = new Set([...this.seen.values()].map((c) => c.goal));
        for (const goal of this.shown.keys()) if (!next.has(goal) && !recent.has(goal)) this.shown.delete(goal); // a deleted goal
        for (const [goal, n] of next) this.shown.set(goal, Math.max(n, this.shown.get(goal) || 0));
      })
      .finally(() => (this.pending = null));
    return this.pending;
  }

  // add counts a conversion message once; it reports whether it was new.
  add(m) {
    const key = `${m.visitor}|${m.time}|${m.goal}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, { goal: m.goal, at: Date.now() });
    this.shown.set(m.goal, (this.shown.get(m.goal) || 0) + 1);
    return true;
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
