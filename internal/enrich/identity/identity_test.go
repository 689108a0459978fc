package identity_test

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

const (
	chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	safariUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

var (
	ip4     = netip.MustParseAddr("203.0.113.7")
	ip4in6  = netip.MustParseAddr("::ffff:203.0.113.7")
	ip6     = netip.MustParseAddr("2001:db8::7")
	salt1   = bytes.Repeat([]byte{1}, salt.Size)
	salt2   = bytes.Repeat([]byte{2}, salt.Size)
	t0      = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	timeout = 30 * time.Minute
)

func TestVisitor(t *testing.T) {
	h1, h2 := identity.NewHasher(salt1), identity.NewHasher(salt2)
	base := h1.Visitor("site1", ip4, chromeUA)
	if base != h1.Visitor("site1", ip4, chromeUA) {
		t.Fatal("same input, different id")
	}
	if base != h1.Visitor("site1", ip4in6, chromeUA) {
		t.Fatal("IPv4 and its IPv4-mapped form differ")
	}
	differ := map[string]uint64{
		"other site":   h1.Visitor("site2", ip4, chromeUA),
		"other IP":     h1.Visitor("site1", ip6, chromeUA),
		"other UA":     h1.Visitor("site1", ip4, safariUA),
		"other salt":   h2.Visitor("site1", ip4, chromeUA),
		"shifted site": h1.Visitor("site", ip4, chromeUA), // site/IP boundary
	}
	for name, id := range differ {
		if id == base {
			t.Errorf("%s: same id %d", name, id)
		}
	}
	for i := range 1000 {
		ua := chromeUA + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if id := h1.Visitor("site1", ip4, ua); id>>63 != 0 || id == 0 {
			t.Fatalf("id %x not a non-zero 63-bit value", id)
		}
	}
}

func TestVisitorConcurrent(t *testing.T) {
	h := identity.NewHasher(salt1)
	want := h.Visitor("site1", ip4, chromeUA)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if got := h.Visitor("site1", ip4, chromeUA); got != want {
					t.Errorf("got %d, want %d", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// stores are the Sessions implementations that must behave alike.
var stores = []struct {
	name string
	open func(t *testing.T) identity.Sessions
}{
	{"memory", func(t *testing.T) identity.Sessions { return identity.NewMemory(identity.MemoryOptions{}) }},
	{"redis", func(t *testing.T) identity.Sessions {
		r := identity.NewRedisSessions(testutil.Redis(t), testutil.RedisPrefix(t, "pl_test_")+":", identity.RedisOptions{Timeout: redisTimeout})
		t.Cleanup(func() {
			if n := r.Fallbacks(); n != 0 {
				t.Errorf("%d hits fell back to memory", n)
			}
			r.Close()
		})
		return r
	}},
}

func TestSessions(t *testing.T) {
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
						h := identity.Hit{Site: "site1", Visitor: visitor, Time: t0.Add(st.at), Timeout: timeout, Pageview: st.pageview, Create: st.create}
						if st.previous != 0 {
							h.Previous = base + st.previous
						}
						s, ok := m.Touch(h)
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
						if st.newSess && !s.Start.Equal(h.Time) {
							t.Fatalf("step %d: start %v, want %v", i, s.Start, h.Time)
						}
						prev = s.ID
					}
				})
			}
		})
	}
}

func TestMemoryBounded(t *testing.T) {
	m := identity.NewMemory(identity.MemoryOptions{MaxSessions: 640, SweepInterval: time.Hour})
	for v := range uint64(10000) {
		if _, ok := m.Touch(identity.Hit{Visitor: v * 0x9e3779b97f4a7c15, Time: t0, Timeout: timeout, Create: true}); !ok {
			t.Fatal("create failed")
		}
	}
	if n := m.Len(); n > 640 {
		t.Fatalf("Len = %d, want at most 640", n)
	}
	if n := m.Sweep(t0.Add(timeout)); n != m.Len()+n || m.Len() != 0 {
		t.Fatalf("Sweep left %d sessions", m.Len())
	}
}

func TestMemorySweepsOnTouch(t *testing.T) {
	m := identity.NewMemory(identity.MemoryOptions{SweepInterval: time.Minute})
	for v := range uint64(shards * 4) {
		m.Touch(identity.Hit{Visitor: v, Time: t0, Timeout: timeout, Create: true})
	}
	// An hour later, one hit on every shard sweeps the expired sessions.
	later := t0.Add(time.Hour)
	for v := range uint64(shards) {
		m.Touch(identity.Hit{Visitor: v, Time: later, Timeout: timeout, Create: true})
	}
	if n := m.Len(); n != shards {
		t.Fatalf("Len = %d after sweeping, want %d", n, shards)
	}
}

const shards = 64

func TestMemoryConcurrent(t *testing.T) {
	m := identity.NewMemory(identity.MemoryOptions{})
	var wg sync.WaitGroup
	ids := make([]uint64, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				s, ok := m.Touch(identity.Hit{Visitor: 7, Time: t0.Add(time.Duration(i) * time.Millisecond), Timeout: timeout, Pageview: true, Create: true})
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

func TestResolverAcrossMidnight(t *testing.T) {
	ctx := context.Background()
	ring := salt.NewRing(nil)
	r := identity.NewResolver(identity.NewMemory(identity.MemoryOptions{}), timeout)
	req := func(at time.Time, site string) identity.Request {
		return identity.Request{SiteID: site, IP: ip4, UserAgent: chromeUA, Time: at, Pageview: true, Create: true}
	}
	resolve := func(at time.Time, site string) identity.Identity {
		t.Helper()
		if err := ring.Rotate(ctx, at); err != nil {
			t.Fatal(err)
		}
		id, ok := r.Resolve(ring.Salts(at), req(at, site))
		if !ok {
			t.Fatal("not resolved")
		}
		return id
	}

	evening := time.Date(2025, 3, 10, 23, 50, 0, 0, time.UTC)
	a := resolve(evening, "site1")
	if !a.Entry {
		t.Fatal("first pageview is not an entry")
	}
	if b := resolve(evening.Add(5*time.Minute), "site1"); b != (identity.Identity{Visitor: a.Visitor, Session: a.Session}) {
		t.Fatalf("same day: %+v, want visitor %d session %d", b, a.Visitor, a.Session)
	}
	other := resolve(evening.Add(6*time.Minute), "site2")
	if other.Visitor == a.Visitor || !other.Entry {
		t.Fatalf("another site shares the visitor or is not an entry: %+v", other)
	}

	// 00:05 the next day: a new salt, but the visit goes on.
	afterMidnight := time.Date(2025, 3, 11, 0, 5, 0, 0, time.UTC)
	c := resolve(afterMidnight, "site1")
	if c.Visitor != a.Visitor || c.Session != a.Session || c.Entry {
		t.Fatalf("across midnight: %+v, want the evening's visitor and session", c)
	}

	// After 30 idle minutes the visitor gets today's id and a new session.
	d := resolve(afterMidnight.Add(31*time.Minute), "site1")
	if d.Visitor == a.Visitor || d.Session == a.Session || !d.Entry {
		t.Fatalf("after the timeout: %+v, want a new visitor id, session and entry", d)
	}
	if e := resolve(afterMidnight.Add(40*time.Minute), "site1"); e.Visitor != d.Visitor || e.Session != d.Session {
		t.Fatalf("today's id is not stable: %+v vs %+v", e, d)
	}

	// A ping without a live session is refused.
	ping := req(afterMidnight.Add(5*time.Hour), "site1")
	ping.Pageview, ping.Create = false, false
	if _, ok := r.Resolve(ring.Salts(ping.Time), ping); ok {
		t.Fatal("a ping started a session")
	}
}

func BenchmarkVisitor(b *testing.B) {
	h := identity.NewHasher(salt1)
	b.ReportAllocs()
	for b.Loop() {
		h.Visitor("site1", ip4, chromeUA)
	}
}

func BenchmarkTouch(b *testing.B) {
	m := identity.NewMemory(identity.MemoryOptions{})
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		m.Touch(identity.Hit{Visitor: i % 100000 * 0x9e3779b97f4a7c15, Time: t0, Timeout: timeout, Pageview: true, Create: true})
	}
}

func BenchmarkResolve(b *testing.B) {
	ring := salt.NewRing(nil)
	if err := ring.Rotate(context.Background(), t0); err != nil {
		b.Fatal(err)
	}
	r := identity.NewResolver(identity.NewMemory(identity.MemoryOptions{}), timeout)
	s := ring.Salts(t0)
	req := identity.Request{SiteID: "site1", IP: ip4, UserAgent: chromeUA, Time: t0, Pageview: true, Create: true}
	b.ReportAllocs()
	for b.Loop() {
		r.Resolve(s, req)
	}
}
