package session

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxSessions bounds a Memory's sessions unless told otherwise:
// about 100 MB when full.
const DefaultMaxSessions = 1 << 20

// shardCount spreads the sessions over this many maps, each behind its own
// mutex, so that hits of different visits rarely wait for each other and a
// sweep holds up only a sixty-fourth of them.
const shardCount = 64

// sweepInterval is how often a shard drops its expired sessions.
const sweepInterval = time.Minute

// Memory is a Store in this instance's memory. Several instances behind a
// load balancer each see only their own hits: route a client to one
// instance (sticky by IP) or share Redis.
//
// A shard drops its expired sessions on the first Touch after a minute, so
// memory stays bounded without a goroutine. When a shard is full, the
// session closest to expiry among a few goes.
type Memory struct {
	shards   [shardCount]shard
	perShard int
}

type shard struct {
	mu        sync.Mutex
	m         map[uint64]entry // by the visitor id the session runs under
	lastSweep int64            // unix ms
}

type entry struct {
	id      uint64
	start   int64 // unix ms
	expires int64 // unix ms: last hit + Timeout
	entered bool  // a pageview was seen
	// confirmed is the time of the last hit a shared store answered for
	// the session (unix ms; 0: none).
	confirmed int64
}

// NewMemory returns an empty store of at most maxSessions sessions
// (DefaultMaxSessions when not positive).
func NewMemory(maxSessions int) *Memory {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	m := &Memory{perShard: max(1, maxSessions/shardCount)}
	for i := range m.shards {
		m.shards[i].m = make(map[uint64]entry)
	}
	return m
}

// Touch implements Store.
func (m *Memory) Touch(_ context.Context, l Lookup) (Session, bool) {
	s, _, ok := m.touch(l)
	return s, ok
}

// touch is Touch that also reports whether the session has seen a
// pageview, counting l.
func (m *Memory) touch(l Lookup) (s Session, entered, ok bool) {
	if l.Previous != 0 {
		if s, entered, ok := m.touchOne(l.Previous, l, false); ok {
			return s, entered, true
		}
	}
	return m.touchOne(l.Visitor, l, l.Create)
}

func (m *Memory) touchOne(visitor uint64, l Lookup, create bool) (Session, bool, bool) {
	sh := m.shard(visitor)
	now := l.Time.UnixMilli()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.maybeSweep(now)

	if e, ok := sh.m[visitor]; ok && now < e.expires {
		s := Session{ID: e.id, Visitor: visitor, Start: time.UnixMilli(e.start), Entry: l.Pageview && !e.entered}
		e.expires = max(e.expires, now+Timeout.Milliseconds())
		e.entered = e.entered || l.Pageview
		sh.m[visitor] = e
		return s, e.entered, true
	}
	if !create {
		return Session{}, false, false
	}
	start := time.UnixMilli(now)
	e := entry{id: ID(visitor, start), start: now, expires: now + Timeout.Milliseconds(), entered: l.Pageview}
	m.store(sh, visitor, e)
	return Session{ID: e.id, Visitor: visitor, Start: start, Entry: l.Pageview}, e.entered, true
}

// peek returns the session live under visitor at t, and whether it has seen
// a pageview, without extending it.
func (m *Memory) peek(visitor uint64, t time.Time) (s Session, entered, ok bool) {
	sh := m.shard(visitor)
	sh.mu.Lock()
	e, ok := sh.m[visitor]
	sh.mu.Unlock()
	if !ok || t.UnixMilli() >= e.expires {
		return Session{}, false, false
	}
	return Session{ID: e.id, Visitor: visitor, Start: time.UnixMilli(e.start)}, e.entered, true
}

// recent answers l from memory when a shared store confirmed its session
// less than within ago and l cannot change what the store holds: the store
// then has the session too, with its entry if l is a pageview. It extends
// the session here only; ok is false, changing nothing, for any other hit.
// Like touch, it prefers the session under l.Previous.
func (m *Memory) recent(l Lookup, within time.Duration) (Session, bool) {
	now := l.Time.UnixMilli()
	for _, visitor := range [2]uint64{l.Previous, l.Visitor} {
		if visitor == 0 {
			continue
		}
		sh := m.shard(visitor)
		sh.mu.Lock()
		e, ok := sh.m[visitor]
		if !ok || now >= e.expires || now-e.confirmed >= within.Milliseconds() || (l.Pageview && !e.entered) {
			sh.mu.Unlock()
			continue
		}
		e.expires = max(e.expires, now+Timeout.Milliseconds())
		sh.m[visitor] = e
		sh.mu.Unlock()
		return Session{ID: e.id, Visitor: visitor, Start: time.UnixMilli(e.start)}, true
	}
	return Session{}, false
}

// put records s, last seen at t, as a shared store answered it.
func (m *Memory) put(s Session, entered bool, t time.Time) {
	sh := m.shard(s.Visitor)
	now := t.UnixMilli()
	expires := now + Timeout.Milliseconds()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.maybeSweep(now)
	if e, ok := sh.m[s.Visitor]; ok && e.id == s.ID {
		e.expires = max(e.expires, expires)
		e.entered = e.entered || entered
		e.confirmed = max(e.confirmed, now)
		sh.m[s.Visitor] = e
		return
	}
	m.store(sh, s.Visitor, entry{id: s.ID, start: s.Start.UnixMilli(), expires: expires, entered: entered, confirmed: now})
}

func (m *Memory) shard(visitor uint64) *shard {
	// Visitor ids are uniform hashes: their low bits spread the shards.
	return &m.shards[visitor%shardCount]
}

// store sets visitor's entry, making room first when the shard is full; the
// caller holds sh.mu.
func (m *Memory) store(sh *shard, visitor uint64, e entry) {
	if _, ok := sh.m[visitor]; !ok && len(sh.m) >= m.perShard {
		sh.evict()
	}
	sh.m[visitor] = e
}

// maybeSweep drops expired sessions when a sweep is due; the caller holds
// sh.mu.
func (sh *shard) maybeSweep(now int64) {
	if now-sh.lastSweep < sweepInterval.Milliseconds() {
		return
	}
	sh.sweep(now)
}

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
