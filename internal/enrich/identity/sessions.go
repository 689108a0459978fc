package identity

import (
	"sync"
	"time"
)

// Hit is one hit as the session store sees it.
type Hit struct {
	// Site is the site of the hit. Visitor ids already differ per site;
	// a shared store names its keys by site too.
	Site string
	// Visitor is the visitor id under today's salt.
	Visitor uint64
	// Previous is the visitor id under yesterday's salt (0: none). A
	// session still live under it is extended in preference to today's,
	// so a visit across midnight stays one session.
	Previous uint64
	Time     time.Time
	// Timeout ends a session after this much inactivity.
	Timeout time.Duration
	// Pageview marks a pageview: the first one of a session is its entry.
	Pageview bool
	// Create lets the hit start a session when none is live. Engagement
	// hits (pings, leaves) don't, so a late ping cannot open an empty visit.
	Create bool
}

// Session is the session a hit belongs to.
type Session struct {
	ID uint64
	// Visitor is the visitor id the session runs under: Hit.Previous when
	// it continued yesterday's session, Hit.Visitor otherwise.
	Visitor uint64
	Start   time.Time
	// Entry is true for the session's first pageview.
	Entry bool
}

// Sessions tracks live sessions by visitor id. Implementations must be safe
// for concurrent use.
type Sessions interface {
	// Touch extends the visitor's live session to cover h (the one under
	// h.Previous first, then h.Visitor), or, when none is live and h.Create
	// is set, starts one under h.Visitor at h.Time. ok is false when no
	// session is live and h.Create is not set.
	Touch(h Hit) (s Session, ok bool)
}

// MemoryOptions configure NewMemory. Zero values mean the defaults.
type MemoryOptions struct {
	// MaxSessions bounds the sessions held (default 1<<20, about 100 MB
	// when full). When full, expired sessions are dropped first, then the
	// ones closest to expiry.
	MaxSessions int
	// SweepInterval is how often each shard drops its expired sessions
	// (default 1m).
	SweepInterval time.Duration
}

const shardCount = 64

// Memory is an in-memory Sessions. It is per instance: several instances
// behind a load balancer each see only their own hits, so route a client
// to one instance (sticky by IP) or share RedisSessions.
//
// Sessions live in 64 shards, each behind its own mutex. A shard drops its
// expired sessions on the first Touch after SweepInterval, so memory stays
// bounded without a background goroutine; Sweep does all shards at once.
type Memory struct {
	shards   [shardCount]shard
	perShard int
	interval int64 // milliseconds
}

type shard struct {
	mu        sync.Mutex
	m         map[uint64]entry
	lastSweep int64    // unix ms
	_         [40]byte // keep shards on separate cache lines
}

type entry struct {
	id      uint64
	start   int64 // unix ms
	expires int64 // unix ms: last hit + timeout
	entered bool  // a pageview was seen

	// What the shared store (RedisSessions) last answered for the session:
	// its expiry there and whether it had seen a pageview. Zero when it has
	// not answered for this session.
	syncedEntered bool
	synced        int64 // unix ms
}

// NewMemory returns an empty in-memory session store.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 1 << 20
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Minute
	}
	m := &Memory{
		perShard: max(1, opts.MaxSessions/shardCount),
		interval: opts.SweepInterval.Milliseconds(),
	}
	for i := range m.shards {
		m.shards[i].m = make(map[uint64]entry)
	}
	return m
}

// Touch implements Sessions.
func (m *Memory) Touch(h Hit) (Session, bool) {
	s, _, ok := m.touchEntered(h)
	return s, ok
}

// touchEntered is Touch that also reports whether the session has seen a
// pageview, counting h.
func (m *Memory) touchEntered(h Hit) (s Session, entered, ok bool) {
	if h.Previous != 0 {
		if s, entered, ok := m.touch(h.Previous, h, false); ok {
			return s, entered, true
		}
	}
	return m.touch(h.Visitor, h, h.Create)
}

// touch is Touch for one visitor id.
func (m *Memory) touch(visitor uint64, h Hit, create bool) (Session, bool, bool) {
	// Visitor ids are uniform hashes, so their low bits spread the shards.
	sh := &m.shards[visitor%shardCount]
	now := h.Time.UnixMilli()
	timeout := h.Timeout.Milliseconds()

	sh.mu.Lock()
	defer sh.mu.Unlock()

	if now-sh.lastSweep >= m.interval {
		sh.sweep(now)
	}

	if e, ok := sh.m[visitor]; ok && now < e.expires {
		s := Session{ID: e.id, Visitor: visitor, Start: time.UnixMilli(e.start), Entry: h.Pageview && !e.entered}
		e.expires = max(e.expires, now+timeout)
		e.entered = e.entered || h.Pageview
		sh.m[visitor] = e
		return s, e.entered, true
	}
	if !create {
		return Session{}, false, false
	}

	if _, ok := sh.m[visitor]; !ok && len(sh.m) >= m.perShard {
		// Full: sweep at most once a second (a shard full of live sessions
		// would otherwise be scanned on every new visitor), then evict.
		if now-sh.lastSweep >= 1000 {
			sh.sweep(now)
		}
		if len(sh.m) >= m.perShard {
			sh.evict()
		}
	}
	start := time.UnixMilli(now)
	e := entry{id: SessionID(visitor, start), start: now, expires: now + timeout, entered: h.Pageview}
	sh.m[visitor] = e
	return Session{ID: e.id, Visitor: visitor, Start: start, Entry: h.Pageview}, e.entered, true
}

// continueLive is Touch for the hits whose answer cannot depend on what
// other instances saw: the visitor has a session live here, and h is not a
// pageview that could be its entry. It reports false, changing nothing, for
// any other hit. behind reports whether the shared store should hear of h:
// its copy of the session lacks the pageview seen here, or would expire
// more than 1/behindSlack of the timeout before this one does now.
//
// Like Touch, it prefers the session under h.Previous.
func (m *Memory) continueLive(h Hit) (s Session, entered, behind, ok bool) {
	now := h.Time.UnixMilli()
	for _, visitor := range [2]uint64{h.Previous, h.Visitor} {
		if visitor == 0 {
			continue
		}
		sh := &m.shards[visitor%shardCount]
		sh.mu.Lock()
		e, found := sh.m[visitor]
		if !found || now >= e.expires {
			sh.mu.Unlock()
			continue
		}
		if h.Pageview && !e.entered {
			sh.mu.Unlock()
			return Session{}, false, false, false
		}
		timeout := h.Timeout.Milliseconds()
		e.expires = max(e.expires, now+timeout)
		sh.m[visitor] = e
		sh.mu.Unlock()
		behind = e.entered != e.syncedEntered || e.expires-e.synced > timeout/behindSlack
		return Session{ID: e.id, Visitor: visitor, Start: time.UnixMilli(e.start)}, e.entered, behind, true
	}
	return Session{}, false, false, false
}

// behindSlack bounds how far the shared store's copy of a session may lag
// this instance's: 1/behindSlack of the timeout, 30 seconds of the default
// 30 minutes. A visit's hits within that much of the last one the store
// heard of are not written behind (most hits of most visits), and another
// instance ends the visit's session at most that much early: only a visit
// that comes back to it after a gap just short of the timeout is split.
// Likewise a session Redis lost (a restart without persistence, say) is
// written back, or given up for the one another instance started
// meanwhile, once the visit has gone on that much longer here.
const behindSlack = 60

// peek returns the session live under visitor at t, and whether it has seen
// a pageview, without extending it.
func (m *Memory) peek(visitor uint64, t time.Time) (s Session, entered, ok bool) {
	sh := &m.shards[visitor%shardCount]
	sh.mu.Lock()
	e, ok := sh.m[visitor]
	sh.mu.Unlock()
	if !ok || t.UnixMilli() >= e.expires {
		return Session{}, false, false
	}
	return Session{ID: e.id, Visitor: visitor, Start: time.UnixMilli(e.start)}, e.entered, true
}

// put records s, last seen at t, as learnt from a shared store, which then
// holds s at least as recent as that.
func (m *Memory) put(s Session, entered bool, t time.Time, timeout time.Duration) {
	sh := &m.shards[s.Visitor%shardCount]
	now := t.UnixMilli()
	expires := now + timeout.Milliseconds()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now-sh.lastSweep >= m.interval {
		sh.sweep(now)
	}
	e, ok := sh.m[s.Visitor]
	if ok && e.id == s.ID {
		e.expires = max(e.expires, expires)
		e.entered = e.entered || entered
		e.synced = max(e.synced, expires)
		e.syncedEntered = e.syncedEntered || entered
		sh.m[s.Visitor] = e
		return
	}
	if !ok && len(sh.m) >= m.perShard {
		sh.evict()
	}
	sh.m[s.Visitor] = entry{id: s.ID, start: s.Start.UnixMilli(), expires: expires, entered: entered, synced: expires, syncedEntered: entered}
}

// sweep drops expired sessions; the caller holds sh.mu.
func (sh *shard) sweep(now int64) int {
	n := 0
	for k, e := range sh.m {
		if e.expires <= now {
			delete(sh.m, k)
			n++
		}
	}
	sh.lastSweep = now
	return n
}

// evict drops the session closest to expiry among a few, which in a full
// shard of live sessions is about as good as the true oldest and O(1).
func (sh *shard) evict() {
	var victim uint64
	oldest := int64(1<<63 - 1)
	i := 0
	for k, e := range sh.m { // map order is random: a random sample
		if e.expires < oldest {
			victim, oldest = k, e.expires
		}
		if i++; i == 8 {
			break
		}
	}
	delete(sh.m, victim)
}

// Sweep drops every expired session now and reports how many.
func (m *Memory) Sweep(now time.Time) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.sweep(now.UnixMilli())
		sh.mu.Unlock()
	}
	return n
}

// Len reports the number of sessions held, live or not yet swept.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
