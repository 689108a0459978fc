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
 *   data-outbound         clicks on links to other hosts: event "Outbound Link: Click", prop url
 *   data-downloads        clicks on file links: event "File Download", prop url; the value, if
 *                         any, replaces the default extensions (e.g. data-downloads="pdf,zip")
 *   data-404              a page with <meta name="pocketlytics" content="404"> sends event "404", prop path
 *   data-hash             hash routing: a "#/route" is part of the page's path
 *
 * Custom events: window.pocketlytics.track("Signup", {plan: "pro"}), with revenue:
 * track("Purchase", {}, {revenue: {amount: 49.9, currency: "EUR"}});
 * a 404 page may also call window.pocketlytics.notFound().
 *
 * Pings and the leave hit carry the page's engagement: e, the milliseconds
 * it was visible since the last ping, and s, the deepest point scrolled to in
 * percent.
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
  var hash = data('hash') !== null;
  var exts = data('downloads');
  exts =
    exts !== null &&
    new RegExp(
      '\\.(' + (exts || 'pdf,zip,gz,tgz,rar,7z,dmg,exe,msi,pkg,deb,rpm,apk,iso,csv,xlsx?,docx?,pptx?,txt,epub,mp3,mp4,mov,avi,wav').replace(/[\s.]/g, '').replace(/,/g, '|') + ')$',
      'i'
    );

  var lastPath = null;
  var page; // the url of the last pageview, which pings and the leave are about
  var timer = 0;
  var shown, spent, depth; // engagement of the current page

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

  // engaged returns the milliseconds the page was visible since it was last
  // asked, at most a day (the server's bound).
  function engaged() {
    var now = Date.now();
    var t = spent + (d.hidden ? 0 : now - shown);
    spent = 0;
    shown = now;
    return Math.min(t, 864e5);
  }

  function scrolled() {
    var h = d.documentElement.scrollHeight;
    var p = h ? Math.round(((w.scrollY + w.innerHeight) * 100) / h) : 100;
    if (p > depth) depth = Math.min(p, 100);
  }

  // A beacon survives the page being unloaded (a leave, a followed link);
  // text/plain needs no CORS preflight.
  function send(type, name, props, beacon, revenue) {
    if (off) return;
    var engage = type === 'ping' || type === 'leave';
    var body = JSON.stringify({
      site: site,
      type: type,
      url: engage ? page : loc.href,
      referrer: d.referrer,
      title: d.title,
      name: name,
      props: stringify(props),
      revenue: revenue,
      w: w.innerWidth,
      h: hash ? 1 : undefined,
      e: engage ? engaged() : undefined,
      s: engage ? depth : undefined
    });
    if (beacon && nav.sendBeacon) {
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

  // path is the page's path, with its "#/route" under data-hash.
  function path() {
    return loc.pathname + (hash && loc.hash.indexOf('#/') === 0 ? loc.hash : '');
  }

  function notFound() {
    send('event', '404', { path: path() });
  }

  function pageview() {
    var p = path();
    if (p === lastPath) return;
    // A navigation within the page: the page left gets its engagement.
    if (lastPath !== null) send('ping');
    lastPath = p;
    page = loc.href;
    shown = Date.now();
    spent = depth = 0;
    scrolled();
    send('pageview');
    startBeat();
    if (data('404') !== null && d.querySelector('meta[name=pocketlytics][content="404"]')) notFound();
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
  if (hash) w.addEventListener('hashchange', pageview);
  w.addEventListener('scroll', scrolled, { passive: true });

  // Link clicks are sent as beacons and the click is left alone: the
  // navigation (new tab, middle click, modifier keys) happens as usual.
  function click(e) {
    var a = e.target.closest && e.target.closest('a[href]');
    if (!a || (e.type === 'auxclick' && e.button !== 1)) return;
    var outbound = /^https?:$/.test(a.protocol) && a.host !== loc.host;
    if (exts && exts.test(a.pathname)) send('event', 'File Download', { url: a.href }, 1);
    else if (outbound && data('outbound') !== null) send('event', 'Outbound Link: Click', { url: a.href }, 1);
  }
  d.addEventListener('click', click, true);
  d.addEventListener('auxclick', click, true);

  d.addEventListener('visibilitychange', function () {
    if (d.hidden) {
      spent += Date.now() - shown;
      stopBeat();
    } else {
      shown = Date.now();
      startBeat();
    }
  });
  w.addEventListener('pagehide', function () {
    stopBeat();
    if (lastPath !== null) send('leave', '', '', 1);
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
      if (typeof name === 'string' && name) send('event', name, props, false, opts && opts.revenue);
    },
    notFound: notFound
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
