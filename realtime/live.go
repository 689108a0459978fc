// Package realtime is Pocketlytics' live layer: every accepted hit becomes a
// live message that reaches the dashboards watching its site through
// PocketBase's own realtime SSE (/api/realtime), plus a live visitor count and
// the state behind the polling fallback (hooks.RegisterLive).
//
// Dashboards subscribe with the PocketBase JS SDK:
//
//	pb.realtime.subscribe("analytics/live/" + siteId, (msg) => { ... })
//
// Anyone may subscribe to a public site's topic, as anyone may read its
// statistics; any other site's topic only a client whose auth record the
// sites view rule admits (owner, admins, members; superusers always). Forbidden
// topics are dropped from the subscription request, like PocketBase treats
// record topics a client may not see: the request succeeds and the client
// receives nothing for them. Clients that lose access (owner, admins, members,
// public flag or rule changed, site or user deleted) are unsubscribed at once. docs/LIVE.md lists the messages.
//
// Wiring, in main.go:
//
//	live, err := realtime.Register(app, realtime.Config{Redis: rdb, Window: cfg.LiveWindow})
//	...
//	hooks.RegisterCollect(app, hooks.CollectConfig{Live: live, ...})
//	hooks.RegisterLive(app, hooks.LiveConfig{Live: live})
//
// The path of a hit: Publish hands it to a worker without blocking; the
// worker updates presence (realtime/presence) and turns the hit into
// messages on the bus (realtime/bus: in process, or Redis pub/sub so every
// instance gets every message) — only for sites some instance watches (see
// interest.go); each instance's bridge forwards them to its
// own subscribers through per-client bounded buffers, and a count loop —
// running only while someone watches — pushes count changes at most every
// CountThrottle per site.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/lograte"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
	"github.com/pocketlytics/pocketlytics/realtime/bus"
	"github.com/pocketlytics/pocketlytics/realtime/presence"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// Config configures the live layer. Zero values mean the defaults.
type Config struct {
	// Redis shares presence and live messages between instances. Nil keeps
	// both in this process (a single instance).
	Redis *redis.Client

	// Window is the sliding window of the live visitor count: a visitor is
	// live while their last hit is younger than this (default config.LiveWindow).
	Window time.Duration

	// CountThrottle is the shortest interval between two count messages of
	// one site (default 250ms, so at most 4 per second).
	CountThrottle time.Duration

	// Channel is the Redis pub/sub channel of live messages (default config.LiveChannel).
	Channel string

	// KeyPrefix starts every Redis key of the live layer (default "live").
	KeyPrefix string

	// LeaveGrace is how long a leave waits for another hit of the same
	// visitor (the next page of a navigation, another tab's heartbeat)
	// before the visitor counts as gone (default 5s).
	LeaveGrace time.Duration

	// ClientBuffer is how many messages a slow client may fall behind before
	// its oldest ones are dropped (default 1024). Count messages are not
	// buffered: a client only ever gets the latest one.
	ClientBuffer int

	// QueueSize is how many hits may wait for the live worker; beyond it
	// Publish drops hits (counted in pocketlytics_live_dropped_total) rather
	// than slow the ingest route (default 8192).
	QueueSize int

	// DisablePush turns the SSE topics off (for proxies that buffer event
	// streams): live topics are dropped from subscriptions and dashboards
	// poll GET /api/analytics/sites/{id}/live, which then reports push=false.
	DisablePush bool

	// MaxSites is how many sites one realtime client may watch at once
	// (default 16). A client holds one live key per site: a later key of
	// the same site replaces the earlier one, so what a watcher costs does
	// not depend on how many keys it sends.
	MaxSites int

	// MaxConnsPerAddr bounds the realtime (SSE) connections from one client
	// address (default 32; negative: no bound). Offices behind one NAT
	// share an address: keep it above the dashboards they keep open.
	MaxConnsPerAddr int
}

// Defaults of Config.
const (
	DefaultChannel       = config.LiveChannel
	DefaultCountThrottle = 250 * time.Millisecond
	DefaultClientBuffer  = 1024
	DefaultQueueSize     = 8192
	DefaultMaxSites      = 16
	DefaultMaxConns      = 32
)

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = presence.DefaultWindow
	}
	if c.CountThrottle <= 0 {
		c.CountThrottle = DefaultCountThrottle
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = presence.DefaultPrefix
	}
	if c.LeaveGrace <= 0 {
		c.LeaveGrace = presence.DefaultGrace
	}
	if c.ClientBuffer <= 0 {
		c.ClientBuffer = DefaultClientBuffer
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxSites <= 0 {
		c.MaxSites = DefaultMaxSites
	}
	if c.MaxConnsPerAddr == 0 {
		c.MaxConnsPerAddr = DefaultMaxConns
	}
	return c
}

// Live is the live layer of one app. It implements hooks.LivePublisher.
type Live struct {
	app    core.App
	cfg    Config
	store  presence.Store
	bus    bus.Bus
	bridge *bridge

	// interest holds the sites other instances watch (with Redis).
	interest *interest

	in     chan event.Event
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	warns *lograte.Limiter // one error entry per 10s
	ready chan struct{}    // closed once the bus delivers

	// The worker's buffers for a batch's presence hits and their events,
	// reused batch after batch.
	hits []presence.Sighting
	evs  []*event.Event
}

// maxBatch bounds the hits the worker handles in one presence round trip.
const maxBatch = 512

// redisTouchGap is the shortest time between two presence updates with
// Redis while hits arrive faster than the updates complete. Each update is a
// script call per site on the Redis that ingest shares, and costs mostly per
// call: under load, hits gather for up to this long (so a dashboard sees them
// that much later), which halved Redis's presence work per hit at full load.
// While each update holds a single hit, none waits.
const redisTouchGap = 20 * time.Millisecond

// maxPending bounds the leaves waiting for their grace period to end. Past
// it a visitor still goes, when the window prunes them.
const maxPending = 100_000

// Register sets up the live layer on app: the realtime subscription hooks,
// the worker and, with cfg.Redis, the Redis presence and bus. It stops with
// the app (OnTerminate) or Close.
//
// Register does no I/O and returns at once, also when Redis is unreachable:
// until Redis answers, Publish still never blocks (the live view of hits is
// lost, their storage is not), the polling route answers 503 and the bus
// keeps reconnecting in the background. The same holds when Redis goes away
// later; everything resumes when it is back.
func Register(app core.App, cfg Config) (*Live, error) {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	l := &Live{
		app:    app,
		cfg:    cfg,
		in:     make(chan event.Event, cfg.QueueSize),
		ctx:    ctx,
		cancel: cancel,
		ready:  make(chan struct{}),
		warns:  lograte.Every(10 * time.Second),

		interest: newInterest(),
	}
	l.bridge = newBridge(app, l)

	popts := presence.Options{Window: cfg.Window, Grace: cfg.LeaveGrace, Prefix: cfg.KeyPrefix}
	if cfg.Redis == nil {
		l.store = presence.NewMemory(popts)
		l.bus = bus.NewLocal(l.bridge.dispatch)
		close(l.ready)
	} else {
		// Neither does I/O here: an unreachable Redis must not stop the
		// app from starting (ingest goes on through the spool). Presence
		// calls fail and the bus reconnects until Redis answers.
		l.store = presence.NewRedis(cfg.Redis, popts)
		rb := bus.NewRedis(cfg.Redis, cfg.Channel, l.receive)
		l.bus = rb
		l.wg.Add(2)
		go l.awaitRedis(rb.Ready())
		go l.heartbeat()
	}

	l.bridge.bind()
	l.wg.Add(2)
	go l.work()
	go l.sample()

	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		l.Close()
		return e.Next()
	})
	return l, nil
}

// MustRegister is Register that panics on error, for main.go wiring.
func MustRegister(app core.App, cfg Config) *Live {
	l, err := Register(app, cfg)
	if err != nil {
		panic(err)
	}
	return l
}

// Publish hands an accepted hit to the live layer. It never blocks: when the
// worker is behind by QueueSize hits, the hit is dropped from the live view
// (it is still stored) and counted in pocketlytics_live_dropped_total.
func (l *Live) Publish(ev event.Event) {
	if l.closed.Load() {
		return
	}
	select {
	case l.in <- ev:
	default:
		metrics.LiveDropped.Inc()
	}
}

// Ready is closed once live messages flow: at once in process, and with
// Redis when the bus subscription first took effect.
func (l *Live) Ready() <-chan struct{} { return l.ready }

// awaitRedis closes ready when the Redis bus is subscribed, and tells the
// operator when that takes a while (Redis down at start).
func (l *Live) awaitRedis(subscribed <-chan struct{}) {
	defer l.wg.Done()
	slow := time.NewTimer(5 * time.Second)
	defer slow.Stop()
	waited := false
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-slow.C:
			waited = true
			l.app.Logger().Warn("live: Redis is not reachable yet; live views resume once it answers")
		case <-subscribed:
			close(l.ready)
			if waited {
				l.app.Logger().Info("live: connected to Redis")
			}
			return
		}
	}
}

// Push reports whether dashboards can subscribe to live topics.
func (l *Live) Push() bool { return !l.cfg.DisablePush }

// Close stops the worker, the count loop and the bus. Hits published after
// Close are ignored. Subscribed clients stay connected but get no more
// live messages.
func (l *Live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.cancel()
	l.wg.Wait()
	l.bridge.close()
	return l.bus.Close()
}

// work is the worker: it applies hits to presence in batches, publishes the
// resulting messages and settles leaves when their grace period ends.
func (l *Live) work() {
	defer l.wg.Done()

	batch := make([]event.Event, 0, maxBatch)
	var pending []presence.Departure // in order of their leave: the grace is the same for all
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var gap time.Duration
	if l.cfg.Redis != nil {
		gap = redisTouchGap
	}
	var lastTouch time.Time
	lastSize := 0

	for {
		var due <-chan time.Time
		if len(pending) > 0 {
			timer.Reset(time.Until(pending[0].At.Add(l.cfg.LeaveGrace)))
			due = timer.C
		}
		select {
		case <-l.ctx.Done():
			return
		case ev := <-l.in:
			batch = append(batch[:0], ev)
			var deadline time.Time
			if lastSize > 1 { // hits queued up behind the last update
				deadline = lastTouch.Add(gap)
			}
			if !l.gather(&batch, deadline) {
				return
			}
			lastTouch, lastSize = time.Now(), len(batch)
			for _, d := range l.apply(batch) {
				if len(pending) < maxPending {
					pending = append(pending, d)
				}
			}
		case <-due:
			n := 0
			for n < len(pending) && !time.Now().Before(pending[n].At.Add(l.cfg.LeaveGrace)) {
				n++
			}
			l.settle(pending[:n])
			pending = append(pending[:0], pending[n:]...)
		}
	}
}

// gather adds the hits waiting for the worker to batch and, while the
// deadline is ahead, those that arrive until then, up to maxBatch. It
// reports false when the live layer closed meanwhile.
func (l *Live) gather(batch *[]event.Event, deadline time.Time) bool {
	var timeout <-chan time.Time
	if wait := time.Until(deadline); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for len(*batch) < maxBatch {
		select {
		case ev := <-l.in:
			*batch = append(*batch, ev)
			continue
		default:
		}
		if timeout == nil {
			return true
		}
		select {
		case ev := <-l.in:
			*batch = append(*batch, ev)
		case <-timeout:
			return true
		case <-l.ctx.Done():
			return false
		}
	}
	return true
}

// apply updates presence for a batch of hits, publishes their messages and
// returns the leaves whose grace period started.
func (l *Live) apply(batch []event.Event) []presence.Departure {
	hits, evs := l.hits[:0], l.evs[:0]
	defer func() { l.hits, l.evs = hits[:0], evs[:0] }()
	for i := range batch {
		ev := &batch[i]
		var kind presence.Kind
		switch ev.Type {
		case event.Pageview:
			kind = presence.Pageview
		case event.Custom, event.Ping:
			kind = presence.Activity
		case event.Leave:
			kind = presence.Leave
		default:
			continue
		}
		if ev.SiteID == "" {
			continue
		}
		visitor := VisitorKey(ev.SiteID, ev.VisitorID)
		hits = append(hits, presence.Sighting{
			Site: ev.SiteID, Visitor: visitor, At: ev.Time, Kind: kind,
			Page: ev.Pathname, Referrer: ev.ReferrerHost,
			Arrival: arrivalOf(ev, visitor),
		})
		evs = append(evs, ev)
	}
	if len(hits) == 0 {
		return nil
	}

	res, err := l.store.Touch(l.ctx, hits)
	if err != nil {
		l.warn("live: presence update failed", err)
		return nil
	}

	var (
		deps []presence.Departure
		msgs []bus.Message
	)
	for i, r := range res {
		ev, h := evs[i], hits[i]
		if r.Leaving {
			deps = append(deps, presence.Departure{Site: h.Site, Visitor: h.Visitor, At: h.At})
			continue
		}
		if r.Stale || !l.wanted(h.Site) {
			continue
		}
		if r.Arrived {
			msgs = l.add(msgs, arrivalMessage(ev, h.Visitor))
		} else if ev.Type == event.Pageview {
			// Reloads too: each pageview may reach a page goal.
			msgs = l.add(msgs, pageviewMessage(ev, h.Visitor, r.PrevPage))
		}
		if ev.Type == event.Custom {
			msgs = l.add(msgs, eventMessage(ev, h.Visitor))
		}
	}
	l.publish(msgs)
	return deps
}

// settle removes the visitors whose grace period ended without another hit.
func (l *Live) settle(deps []presence.Departure) {
	if len(deps) == 0 {
		return
	}
	gone, err := l.store.Settle(l.ctx, deps)
	if err != nil {
		l.warn("live: settling leaves failed", err)
		return
	}
	var msgs []bus.Message
	for i, d := range deps {
		if gone[i] && l.wanted(d.Site) {
			msgs = l.add(msgs, leaveMessage(d.Site, d.Visitor, LeaveClosed, d.At.Add(l.cfg.LeaveGrace)))
		}
	}
	l.publish(msgs)
}

// announce publishes leave messages for visitors that a read removed.
func (l *Live) announce(pruned []presence.Pruned) {
	var msgs []bus.Message
	now := time.Now().UTC()
	for _, p := range pruned {
		if !l.wanted(p.Site) {
			continue
		}
		for _, v := range p.Expired {
			msgs = l.add(msgs, leaveMessage(p.Site, v, LeaveTimeout, now))
		}
		for _, v := range p.Left {
			msgs = l.add(msgs, leaveMessage(p.Site, v, LeaveClosed, now))
		}
	}
	l.publish(msgs)
}

// wanted reports whether messages of site may have a reader: a subscriber
// of this instance or, with Redis, of another that announced the site (see
// interest). No message is built for a site nobody watches.
func (l *Live) wanted(site string) bool {
	if l.cfg.DisablePush {
		return false
	}
	return l.bridge.watching(site) || (l.cfg.Redis != nil && l.interest.watched(site, time.Now()))
}

// receive takes a message from the Redis bus.
func (l *Live) receive(m bus.Message) {
	if m.Site == controlSite {
		l.interest.receive(m.Data, time.Now())
		return
	}
	l.bridge.dispatch(m)
}

func (l *Live) add(msgs []bus.Message, m Message) []bus.Message {
	data, err := json.Marshal(m)
	if err != nil {
		l.warn("live: encoding a message failed", err)
		return msgs
	}
	return append(msgs, bus.Message{Site: m.Site, Data: data})
}

func (l *Live) publish(msgs []bus.Message) {
	if len(msgs) == 0 {
		return
	}
	if err := l.bus.Publish(l.ctx, msgs...); err != nil && !errors.Is(err, bus.ErrClosed) && l.ctx.Err() == nil {
		l.warn("live: publishing messages failed", err)
	}
}

// sample records the per-minute "visitors online" series: once a minute,
// shortly after the minute starts.
func (l *Live) sample() {
	defer l.wg.Done()
	for {
		now := time.Now()
		wait := now.Truncate(time.Minute).Add(time.Minute + time.Second).Sub(now)
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(wait):
		}
		pruned, err := l.store.Sample(l.ctx)
		if err != nil {
			l.warn("live: sampling the online series failed", err)
			continue
		}
		l.announce(pruned)
	}
}

// warn logs an error at most every 10 seconds, so a Redis outage does not
// turn into a log row per batch.
func (l *Live) warn(msg string, err error) {
	if l.ctx.Err() != nil {
		return
	}
	if n, ok := l.warns.Allow(); ok {
		l.app.Logger().Warn(msg, slog.String("error", err.Error()), slog.Int64("suppressed", n))
	}
}
