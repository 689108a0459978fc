/*
 * Pocketlytics tracker. Include it with
 *
 *   <script defer src="https://HOST/t.js" data-site="SITE_ID"></script>
 *
 * Options (data-* attributes on the script tag):
 *   data-site             the site id (required)
 *   data-api              the collect endpoint (default: /api/collect on the script's host)
 *   data-heartbeat        seconds between pings while the page is visible (default 15, 0 = off)
 *   data-allow-localhost  also send from localhost, 127.0.0.1 and file: pages
 *
 * Custom events: window.pocketlytics.track("Signup", {plan: "pro"}), with revenue:
 * track("Purchase", {}, {revenue: {amount: 49.9, currency: "EUR"}}).
 *
 * It sets no cookie and uses no storage: the server derives a daily-salted
 * visitor key from the request, and nothing in the browser identifies anyone.
 */
(function (w, d) {
  'use strict';

  var script = d.currentScript;
  if (!script) return;

  var loc = w.location;
  var nav = w.navigator;
  var data = function (name) {
    return script.getAttribute('data-' + name);
  };
  var site = data('site');
  var endpoint = data('api');
  try {
    endpoint = endpoint || new URL('/api/collect', script.src).href;
  } catch (e) {}
  var beat = data('heartbeat');
  beat = (beat === null || beat === '' || isNaN(beat) ? 15 : +beat) * 1000;
  var local =
    loc.protocol === 'file:' ||
    /^(localhost|127(\.\d+){3}|\[::1\])$/.test(loc.hostname);
  var off = !site || !endpoint || (local && data('allow-localhost') === null);

  var lastPath = null;
  var timer = 0;

  // Values are sent as strings: the server stores props as string pairs.
  function stringify(props) {
    if (!props || typeof props !== 'object') return undefined;
    var out = {};
    for (var k in props) {
      var v = props[k];
      if (v !== null && v !== undefined && typeof v !== 'object' && typeof v !== 'function') {
        out[k] = String(v);
      }
    }
    return out;
  }

  function send(type, name, props, opts) {
    if (off) return;
    var body = JSON.stringify({
      site: site,
      type: type,
      url: loc.href,
      referrer: d.referrer,
      title: d.title,
      name: name,
      props: stringify(props),
      revenue: opts && opts.revenue,
      w: w.innerWidth
    });
    // A beacon survives the page being unloaded; text/plain needs no CORS preflight.
    if (type === 'leave' && nav.sendBeacon) {
      try {
        if (nav.sendBeacon(endpoint, body)) return;
      } catch (e) {}
    }
    try {
      w.fetch(endpoint, {
        method: 'POST',
        body: body,
        keepalive: true,
        credentials: 'omit',
        headers: { 'Content-Type': 'text/plain' }
      })['catch'](function () {});
    } catch (e) {}
  }

  function stopBeat() {
    clearInterval(timer);
    timer = 0;
  }

  function startBeat() {
    stopBeat();
    if (beat > 0 && !d.hidden && lastPath !== null) {
      timer = setInterval(function () {
        send('ping');
      }, beat);
    }
  }

  function pageview() {
    if (loc.pathname === lastPath) return;
    lastPath = loc.pathname;
    send('pageview');
    startBeat();
  }

  // Single-page apps: a history change that alters the path is a pageview.
  function wrap(method) {
    var original = w.history[method];
    if (!original) return;
    w.history[method] = function () {
      var result = original.apply(this, arguments);
      pageview();
      return result;
    };
  }
  wrap('pushState');
  wrap('replaceState');
  w.addEventListener('popstate', pageview);

  d.addEventListener('visibilitychange', function () {
    d.hidden ? stopBeat() : startBeat();
  });
  w.addEventListener('pagehide', function () {
    stopBeat();
    if (lastPath !== null) send('leave');
  });
  // Back/forward cache: the page comes back without loading again.
  w.addEventListener('pageshow', function (e) {
    if (e.persisted) {
      lastPath = null;
      pageview();
    }
  });

  var api = {
    track: function (name, props, opts) {
      if (typeof name === 'string' && name) send('event', name, props, opts);
    }
  };
  // A prerendered page counts once it is actually shown.
  if (d.prerendering) {
    d.addEventListener('prerenderingchange', pageview, { once: true });
  } else {
    pageview();
  }

  // Calls made before the script ran: window.pocketlytics = {q: [["track", name, props]]}.
  var queued = w.pocketlytics && w.pocketlytics.q;
  w.pocketlytics = api;
  for (var i = 0; queued && i < queued.length; i++) {
    if (queued[i] && queued[i][0] === 'track') api.track(queued[i][1], queued[i][2], queued[i][3]);
  }
})(window, document);
