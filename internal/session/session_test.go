package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/session"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

var t0 = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// redisTimeout replaces the 50ms default in tests of what sessions Redis
// gives: the test server is shared with parallel packages and may stall.
const redisTimeout = 5 * time.Second

// stores are the Store implementations that must behave alike.
var stores = []struct {
	name string
	open func(t *testing.T) session.Store
}{
	{"memory", func(t *testing.T) session.Store { return session.NewMemory(0) }},
	{"redis", func(t *testing.T) session.Store {
		r := session.NewRedis(testutil.Redis(t), testutil.RedisPrefix(t, "pl_test_")+":", session.RedisOptions{Timeout: redisTimeout})
		t.Cleanup(func() {
			if n := r.Fallbacks(); n != 0 {
				t.Errorf("%d hits fell back to memory", n)
			}
			r.Close()
		})
		return r
	}},
}

func TestTouch(t *testing.T) {
	type step struct {
		at       time.Duration // since t0
		visitor  uint64        // default 42
		previous uint64        // yesterday's id of the visitor
		pageview bool
		create   bool
		ok       bool
		newSess  bool   // a different session than the previous step's
		entry    bool   // the session's entry
		under    uint64 // the visitor id of the session (default: the hit's)
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"pageviews in one session", []step{
			{at: 0, pageview: true, create: true, ok: true, newSess: true, entry: true},
			{at: 5 * time.Minute, pageview: true, create: true, ok: true},
			{at: 34 * time.Minute, pageview: true, create: true, ok: true}, // 29m gap
		}},
		{"timeout starts a new session with a new entry", []step{
			{at: 0, pageview: true, create: true, ok: true, newSess: true, entry: true},
			{at: 30 * time.Minute, pageview: true, create: true, ok: true, newSess: true, entry: true},
		}},
		{"pings keep a session alive but never start one", []step{
			{at: 0, create: false, ok: false},
			{at: time.Minute, pageview: true, create: true, ok: true, newSess: true, entry: true},
			{at: 25 * time.Minute, ok: true},
			{at: 50 * time.Minute, ok: true},
			{at: 75 * time.Minute, pageview: true, create: true, ok: true},
			{at: 200 * time.Minute, ok: false},
		}},
		{"the entry is the first pageview, not the first hit", []step{
			{at: 0, create: true, ok: true, newSess: true},
			{at: time.Minute, pageview: true, create: true, ok: true, entry: true},
			{at: 2 * time.Minute, pageview: true, create: true, ok: true},
		}},
		{"a late hit does not shorten the session", []step{
			{at: 10 * time.Minute, pageview: true, create: true, ok: true, newSess: true, entry: true},
			{at: 0, ok: true},
			{at: 39 * time.Minute, ok: true},
		}},
		{"yesterday's live session goes on under yesterday's id", []step{
			{at: 0, visitor: 41, pageview: true, create: true, ok: true, newSess: true, entry: true},
			{at: 10 * time.Minute, previous: 41, pageview: true, create: true, ok: true, under: 41},
			{at: 20 * time.Minute, previous: 41, ok: true, under: 41},
			{at: 51 * time.Minute, previous: 41, pageview: true, create: true, ok: true, newSess: true, entry: true},
			{at: 52 * time.Minute, previous: 41, ok: true},
		}},
		{"a ping never starts a session under yesterday's id", []step{
			{at: 0, previous: 41, ok: false},
		}},
	}
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			m := store.open(t)
			for ci, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					var prev uint64
					for i, st := range c.steps {
						// Each case has its own visitors.
						base := uint64(1000 * (ci + 1))
						visitor := base + 42
						if st.visitor != 0 {
							visitor = base + st.visitor
						}
						l := session.Lookup{Site: "site1", Visitor: visitor, Time: t0.Add(st.at), Pageview: st.pageview, Create: st.create}
						if st.previous != 0 {
							l.Previous = base + st.previous
						}
						s, ok := m.Touch(context.Background(), l)
						if ok != st.ok {
							t.Fatalf("step %d: ok = %v, want %v", i, ok, st.ok)
						}
						if !ok {
							continue
						}
						if (s.ID != prev) != st.newSess {
							t.Fatalf("step %d: new session = %v, want %v", i, s.ID != prev, st.newSess)
						}
						if s.Entry != st.entry {
							t.Fatalf("step %d: entry = %v, want %v", i, s.Entry, st.entry)
						}
						under := visitor
						if st.under != 0 {
							under = base + st.under
						}
						if s.Visitor != under {
							t.Fatalf("step %d: session of visitor %d, want %d", i, s.Visitor, under)
						}
						if s.ID>>63 != 0 || s.ID == 0 {
							t.Fatalf("step %d: session id %x not 63-bit", i, s.ID)
						}
						if st.newSess && !s.Start.Equal(l.Time) {
							t.Fatalf("step %d: start %v, want %v", i, s.Start, l.Time)
						}
						prev = s.ID
					}
				})
			}
		})
	}
}

func TestMemoryBounded(t *testing.T) {
	m := session.NewMemory(640)
	for v := range uint64(10000) {
		if _, ok := m.Touch(context.Background(), session.Lookup{Visitor: v * 0x9e3779b97f4a7c15, Time: t0, Create: true}); !ok {
			t.Fatal("create failed")
		}
	}
	if n := m.Len(); n > 640 {
		t.Fatalf("Len = %d, want at most 640", n)
	}
	if m.Sweep(t0.Add(session.Timeout)); m.Len() != 0 {
		t.Fatalf("Sweep left %d sessions", m.Len())
	}
}

func TestMemorySweepsOnTouch(t *testing.T) {
	const shards = 64
	m := session.NewMemory(0)
	for v := range uint64(shards * 4) {
		m.Touch(context.Background(), session.Lookup{Visitor: v, Time: t0, Create: true})
	}
	// An hour later, one hit on every shard sweeps the expired sessions.
	later := t0.Add(time.Hour)
	for v := range uint64(shards) {
		m.Touch(context.Background(), session.Lookup{Visitor: v, Time: later, Create: true})
	}
	if n := m.Len(); n != shards {
		t.Fatalf("Len = %d after sweeping, want %d", n, shards)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := session.NewMemory(0)
	var wg sync.WaitGroup
	ids := make([]uint64, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				s, ok := m.Touch(context.Background(), session.Lookup{Visitor: 7, Time: t0.Add(time.Duration(i) * time.Millisecond), Pageview: true, Create: true})
				if !ok {
					t.Error("touch failed")
					return
				}
				ids[g] = s.ID
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatal("concurrent hits of one visitor split into several sessions")
		}
	}
}

func BenchmarkMemoryTouch(b *testing.B) {
	m := session.NewMemory(0)
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		m.Touch(context.Background(), session.Lookup{Visitor: i % 100000 * 0x9e3779b97f4a7c15, Time: t0, Pageview: true, Create: true})
	}
}
