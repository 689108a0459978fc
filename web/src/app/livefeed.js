// LiveFeed follows one site's live activity: realtime push over PocketBase's
// SSE connection when it works, and polling of the live endpoint every 15 s
// when the server says push is off or the connection fails or is blocked.
// Push is retried with a growing delay; nothing of this is an error to show.
import { pb, live, liveTopic, normalizeArrival, viewer } from './api.js';

export const POLL_MS = 15000;
const RETRY_MIN_MS = 15000;
const RETRY_MAX_MS = 300000;
// How soon after a burst of messages the aggregates (pages, referrers,
// online) are fetched again, and how often regardless.
const RESYNC_AFTER_MS = 4000;
const RESYNC_EVERY_MS = 60000;
const FEED_SIZE = 30;

export class LiveFeed {
  constructor(siteId) {
    this.siteId = siteId;
    this.count = 0;
    this.mode = 'connecting'; // connecting | push | polling
    this.visitors = new Map(); // visitor key → arrival message (+ at, path)
    this.feed = []; // recent arrivals, newest first
    this.pages = [];
    this.referrers = [];
    this.online = [];
    this.error = null;
    this.hasData = false;
    this.listeners = {};
    this.timers = {};
    this.unsub = null;
    this.stopped = false;
    this.retryMs = RETRY_MIN_MS;
    this.countAt = 0;
  }

  // on subscribes to 'count', 'mode', 'arrival', 'leave', 'event',
  // 'conversion', 'message', 'snapshot', 'data' or 'error'; it returns the unsubscribe function.
  on(type, fn) {
    (this.listeners[type] ||= new Set()).add(fn);
    return () => this.listeners[type]?.delete(fn);
  }

  // onData calls fn once data has been seen (now, if it already has).
  onData(fn) {
    if (this.hasData) {
      fn();
      return () => {};
    }
    const off = this.on('data', () => {
      off();
      fn();
    });
    return off;
  }

  emit(type, arg) {
    for (const fn of [...(this.listeners[type] || [])]) {
      try {
        fn(arg);
      } catch (err) {
        console.warn('live listener', err);
      }
    }
  }

  async start() {
    await this.refresh(true);
    if (this.stopped) return;
    if (this.push === false) this.startPolling();
    else this.connect();
    this.timers.resync = setInterval(() => this.mode === 'push' && this.refresh(), RESYNC_EVERY_MS);
  }

  stop() {
    this.stopped = true;
    for (const t of Object.values(this.timers)) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.unsub?.().catch(() => {});
    this.unsub = null;
    pb.realtime.unsubscribe('PB_CONNECT').catch(() => {});
    if (pb.realtime.onDisconnect === this.disconnectHook) pb.realtime.onDisconnect = undefined;
  }

  setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.emit('mode', mode);
  }

  async connect() {
    if (this.stopped) return;
    try {
      const topic = liveTopic(this.siteId);
      this.unsub?.().catch(() => {});
      const share = Object.keys(viewer.query).length ? { query: { ...viewer.query } } : undefined;
      this.unsub = await pb.realtime.subscribe(topic, (msg) => this.handle(msg), share);
      if (this.stopped) return this.unsub();
      // The SDK reconnects by itself after a drop; poll meanwhile.
      this.disconnectHook = (active) => {
        if (!this.stopped && active.length) this.startPolling({ retry: false });
      };
      pb.realtime.onDisconnect = this.disconnectHook;
      await pb.realtime.subscribe('PB_CONNECT', () => {
        if (this.mode !== 'push' && !this.stopped) {
          this.stopPolling();
          this.setMode('push');
          this.refresh();
        }
      });
      this.retryMs = RETRY_MIN_MS;
      this.stopPolling();
      this.setMode('push');
    } catch {
      this.unsub = null;
      this.startPolling({ retry: true });
    }
  }

  startPolling({ retry = true } = {}) {
    if (this.stopped) return;
    this.setMode('polling');
    if (!this.timers.poll) this.timers.poll = setInterval(() => this.refresh(), POLL_MS);
    if (retry && this.push !== false) {
      clearTimeout(this.timers.retry);
      this.timers.retry = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    }
  }

  stopPolling() {
    clearInterval(this.timers.poll);
    clearTimeout(this.timers.retry);
    this.timers.poll = this.timers.retry = 0;
  }

  scheduleResync() {
    if (this.timers.resyncSoon) return;
    this.timers.resyncSoon = setTimeout(() => {
      this.timers.resyncSoon = 0;
      this.refresh();
    }, RESYNC_AFTER_MS);
  }

  async refresh(first = false) {
    let snap;
    try {
      snap = await live(this.siteId);
    } catch (err) {
      if (this.stopped) return;
      if (err?.isAbort) return;
      this.error = err;
      this.emit('error', err);
      return;
    }
    if (this.stopped) return;
    this.error = null;
    const pushBefore = this.push;
    this.push = snap.push;
    this.pages = snap.pages;
    this.referrers = snap.referrers;
    this.online = snap.online;
    this.setCount(snap.count);

    // While polling, the snapshot's visitors are the truth: new keys are
    // arrivals, missing ones have left. The first snapshot only fills in.
    const seen = new Set();
    const fresh = [];
    for (const a of snap.arrivals) {
      const key = a.visitor || `${a.country}|${a.city}|${a.entry}|${a.at}`;
      seen.add(key);
      if (!this.visitors.has(key)) {
        const v = { ...a, visitor: key };
        this.visitors.set(key, v);
        fresh.push(v);
      }
    }
    fresh.sort((a, b) => b.at - a.at);
    if (first) {
      this.feed = fresh.slice(0, FEED_SIZE);
    } else if (this.mode !== 'push') {
      for (const v of fresh.reverse()) this.arrive(v);
      for (const key of [...this.visitors.keys()]) if (!seen.has(key)) this.leave(key);
    }
    if (snap.count > 0 || snap.arrivals.length || snap.online.some((p) => p.visitors > 0)) this.markData();
    this.emit('snapshot', snap);
    if (!first && pushBefore === false && snap.push && this.mode === 'polling') this.connect();
  }

  setCount(n) {
    n = Math.max(0, Number(n) || 0);
    if (n === this.count) return;
    this.count = n;
    this.emit('count', n);
  }

  markData() {
    if (this.hasData) return;
    this.hasData = true;
    this.emit('data');
  }

  arrive(v) {
    this.feed.unshift(v);
    if (this.feed.length > FEED_SIZE) this.feed.length = FEED_SIZE;
    this.emit('arrival', v);
  }

  leave(key) {
    const v = this.visitors.get(key);
    if (!v) return;
    this.visitors.delete(key);
    this.emit('leave', v);
  }

  // handle applies one pushed message (docs/LIVE.md): arrival, pageview,
  // event, conversion, leave or count.
  handle(msg) {
    if (!msg || typeof msg !== 'object') return;
    this.emit('message', msg);
    switch (msg.type) {
      case 'arrival': {
        const key = msg.visitor || `${Date.now()}-${Math.random()}`;
        const known = this.visitors.has(key);
        const v = { ...normalizeArrival(msg), visitor: key, at: Date.now() };
        this.visitors.set(key, v);
        if (!known) {
          this.arrive(v);
          // Count at once; the count message that follows (throttled to
          // 250 ms) corrects this. One that came just before already
          // includes the visitor.
          if (Date.now() - this.countAt > 500) this.setCount(this.count + 1);
        }
        this.markData();
        this.scheduleResync();
        break;
      }
      case 'pageview': {
        const v = this.visitors.get(msg.visitor);
        if (v) v.path = msg.page || v.path;
        this.markData();
        this.scheduleResync();
        break;
      }
      case 'event':
      case 'conversion':
        // Custom events and goal conversions join the arrivals feed.
        this.feed.unshift({ ...msg, kind: msg.type, at: new Date(msg.time).getTime() || Date.now() });
        if (this.feed.length > FEED_SIZE) this.feed.length = FEED_SIZE;
        this.emit(msg.type, msg);
        this.markData();
        break;
      case 'leave':
        if (this.visitors.has(msg.visitor)) {
          this.leave(msg.visitor);
          if (Date.now() - this.countAt > 500) this.setCount(this.count - 1);
        }
        this.scheduleResync();
        break;
      case 'count':
        this.countAt = Date.now();
        this.setCount(msg.visitors);
        if (msg.visitors > 0) this.markData();
        break;
    }
  }
}

// One feed per open site, shared by its tabs.
let shared = null;

export function feedFor(siteId) {
  if (shared?.siteId === siteId && !shared.feed.stopped) {
    clearTimeout(shared.stopTimer);
    return shared.feed;
  }
  shared?.feed.stop();
  const feed = new LiveFeed(siteId);
  shared = { siteId, feed };
  feed.start();
  return feed;
}

// releaseFeed stops the feed unless the next view takes it up at once.
export function releaseFeed(feed) {
  if (shared?.feed !== feed) return feed.stop();
  shared.stopTimer = setTimeout(() => {
    if (shared?.feed === feed) {
      feed.stop();
      shared = null;
    }
  }, 0);
}
