package identity_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// gate forwards connections to the test Redis and can hold what clients
// send, so a test decides when a round trip reaches the server.
type gate struct {
	addr string
	hold sync.RWMutex // write-locked: client bytes wait
}

// gated returns a client for the test Redis through a gate.
func gated(t *testing.T) (*redis.Client, *gate) {
	t.Helper()
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{addr: ln.Addr().String()}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	target := opts.Addr
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(u)
			wg.Go(func() { _, _ = io.Copy(c, u) })
			wg.Go(func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						g.hold.RLock() // waits while held
						g.hold.RUnlock()
						if _, err := u.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	opts.Addr = g.addr
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb, g
}

// Hold stops client bytes from reaching Redis until Release.
func (g *gate) Hold()    { g.hold.Lock() }
func (g *gate) Release() { g.hold.Unlock() }

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdRoundTrips starts a hit in every round trip slot of r, whose
// Redis is gated and held, and waits until they are under way: later hits
// wait for a batch. It returns the held hits' answers.
func holdRoundTrips(t *testing.T, r *identity.RedisSessions) []<-chan touched {
	t.Helper()
	var out []<-chan touched
	for i := range identity.MaxInFlight {
		out = append(out, touchAsync(r, identity.Hit{Site: "site1", Visitor: uint64(1000 + i), Time: t0, Timeout: timeout, Pageview: true, Create: true}))
		waitFor(t, "the round trip", func() bool { return r.Batches() == uint64(i+1) && r.Pending() == 0 })
	}
	return out
}

type touched struct {
	s  identity.Session
	ok bool
}

// touchAsync runs r.Touch(h) in a goroutine and returns its answer's channel.
func touchAsync(r *identity.RedisSessions, h identity.Hit) <-chan touched {
	c := make(chan touched, 1)
	go func() {
		s, ok := r.Touch(h)
		c <- touched{s, ok}
	}()
	return c
}

// TestRedisSessionsBatchOrder queues several hits while a round trip is in
// flight: they go to Redis as one batch, in arrival order, and hits of one
// visitor resolve as if sequential.
func TestRedisSessionsBatchOrder(t *testing.T) {
	rdb, g := gated(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	r := identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard})
	t.Cleanup(func() { r.Close() })
	other := identity.NewRedisSessions(testutil.Redis(t), prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard})
	t.Cleanup(func() { other.Close() })

	// Yesterday's session of visitor 30, which its hit must continue.
	yesterday, ok := other.Touch(identity.Hit{Site: "site1", Visitor: 300, Time: t0.Add(-time.Minute), Timeout: timeout, Pageview: true, Create: true})
	if !ok {
		t.Fatal("no session for yesterday's id")
	}

	g.Hold()
	firsts := holdRoundTrips(t, r)

	hits := []identity.Hit{
		{Site: "site1", Visitor: 10, Time: t0, Timeout: timeout}, // a ping: no session yet
		{Site: "site1", Visitor: 10, Time: t0.Add(time.Second), Timeout: timeout, Pageview: true, Create: true},
		{Site: "site1", Visitor: 10, Time: t0.Add(2 * time.Second), Timeout: timeout, Pageview: true, Create: true},
		{Site: "site1", Visitor: 20, Time: t0.Add(2 * time.Second), Timeout: timeout, Create: true}, // an event
		{Site: "site1", Visitor: 10, Time: t0.Add(3 * time.Second), Timeout: timeout},
		{Site: "site1", Visitor: 20, Time: t0.Add(4 * time.Second), Timeout: timeout, Pageview: true, Create: true},
		{Site: "site1", Visitor: 30, Previous: 300, Time: t0.Add(5 * time.Second), Timeout: timeout, Pageview: true, Create: true},
	}
	answers := make([]<-chan touched, len(hits))
	for i, h := range hits {
		answers[i] = touchAsync(r, h)
		waitFor(t, "the hit to queue", func() bool { return r.Pending() == i+1 })
	}
	g.Release()
	for i, c := range firsts {
		if a := <-c; !a.ok || !a.s.Entry {
			t.Fatalf("first hit %d: %+v", i, a)
		}
	}

	got := make([]touched, len(hits))
	for i, c := range answers {
		got[i] = <-c
	}
	if n := r.Batches(); n != identity.MaxInFlight+1 {
		t.Fatalf("%d batches, want %d", n, identity.MaxInFlight+1)
	}
	if got[0].ok {
		t.Errorf("a ping before any pageview got session %+v", got[0].s)
	}
	ten := got[1].s
	if !got[1].ok || !ten.Entry || !ten.Start.Equal(t0.Add(time.Second)) {
		t.Errorf("visitor 10's pageview: %+v, want a new session, its entry", got[1])
	}
	for _, i := range []int{2, 4} {
		if !got[i].ok || got[i].s.ID != ten.ID || got[i].s.Entry {
			t.Errorf("hit %d: %+v, want session %d without entry", i, got[i], ten.ID)
		}
	}
	twenty := got[3].s
	if !got[3].ok || twenty.Entry {
		t.Errorf("visitor 20's event: %+v, want a session, no entry", got[3])
	}
	if !got[5].ok || got[5].s.ID != twenty.ID || !got[5].s.Entry {
		t.Errorf("visitor 20's first pageview: %+v, want session %d, its entry", got[5], twenty.ID)
	}
	if !got[6].ok || got[6].s.ID != yesterday.ID || got[6].s.Visitor != 300 || got[6].s.Entry {
		t.Errorf("visitor 30: %+v, want yesterday's session %d under 300", got[6], yesterday.ID)
	}
	if n := r.Fallbacks(); n != 0 {
		t.Errorf("%d fallbacks", n)
	}

	// Redis holds what the batch resolved, for every instance.
	if s, ok := other.Touch(identity.Hit{Site: "site1", Visitor: 10, Time: t0.Add(time.Minute), Timeout: timeout, Pageview: true}); !ok || s.ID != ten.ID || s.Entry {
		t.Errorf("another instance: %+v %v, want session %d without entry", s, ok, ten.ID)
	}
}

// TestRedisSessionsConcurrent runs many visits at once through two
// instances: each visit keeps one session with one entry, and concurrent
// hits share round trips.
func TestRedisSessionsConcurrent(t *testing.T) {
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	instances := []*identity.RedisSessions{
		identity.NewRedisSessions(testutil.Redis(t), prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard}),
		identity.NewRedisSessions(testutil.Redis(t), prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard}),
	}
	t.Cleanup(func() {
		for _, r := range instances {
			r.Close()
		}
	})
	const visitors, goroutines, hits = 40, 64, 40
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sessions = map[uint64]map[uint64]bool{} // visitor → session ids
		entries  [visitors]atomic.Int32
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range hits {
				v := uint64((g+i)%visitors) + 1
				r := instances[(g+i)%2]
				s, ok := r.Touch(identity.Hit{Site: "site1", Visitor: v, Time: t0.Add(time.Duration(i) * time.Second), Timeout: timeout, Pageview: true, Create: true})
				if !ok {
					t.Error("no session")
					return
				}
				if s.Entry {
					entries[v-1].Add(1)
				}
				mu.Lock()
				if sessions[v] == nil {
					sessions[v] = map[uint64]bool{}
				}
				sessions[v][s.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for v := uint64(1); v <= visitors; v++ {
		if n := len(sessions[v]); n != 1 {
			t.Errorf("visitor %d: %d sessions", v, n)
		}
		if n := entries[v-1].Load(); n != 1 {
			t.Errorf("visitor %d: %d entries", v, n)
		}
	}
	for i, r := range instances {
		if n := r.Fallbacks(); n != 0 {
			t.Errorf("instance %d: %d fallbacks", i, n)
		}
		t.Logf("instance %d: %d script calls for %d hits", i, r.Batches(), goroutines*hits/2)
	}
}

// TestRedisSessionsBatchTimeout holds the round trips past the timeout:
// their hits and the ones waiting for a batch are resolved in memory and
// counted, and what Redis holds afterwards agrees with memory.
func TestRedisSessionsBatchTimeout(t *testing.T) {
	rdb, g := gated(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	r := identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{
		Timeout: time.Second, // not less: the shared test server may stall
		Logger:  discard,
	})
	t.Cleanup(func() { r.Close() })
	// Connect and load the script first.
	r.Touch(identity.Hit{Site: "site1", Visitor: 99, Time: t0, Timeout: timeout, Pageview: true, Create: true})
	before := r.Fallbacks()

	g.Hold()
	var answers []<-chan touched
	for v := range uint64(5) {
		answers = append(answers, touchAsync(r, identity.Hit{Site: "site1", Visitor: v + 1, Time: t0, Timeout: timeout, Pageview: true, Create: true}))
	}
	mem := make([]identity.Session, len(answers))
	for i, c := range answers {
		a := <-c
		if !a.ok || !a.s.Entry {
			t.Fatalf("hit %d: %+v, want a new session from memory", i, a)
		}
		mem[i] = a.s
	}
	if n := r.Fallbacks() - before; n != 5 {
		t.Fatalf("%d fallbacks, want 5", n)
	}
	g.Release()

	// The failed round trips may have made Redis count as down for a
	// while; once it answers, it has the sessions memory started, for
	// this instance and others.
	waitFor(t, "the sessions to be written", func() bool { return r.Flush() == nil })
	at := t0.Add(time.Second)
	n := r.Fallbacks()
	other := identity.NewRedisSessions(testutil.Redis(t), prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard})
	t.Cleanup(func() { other.Close() })
	for _, store := range []*identity.RedisSessions{r, other} {
		at = at.Add(time.Second)
		for i, want := range mem {
			s, ok := store.Touch(identity.Hit{Site: "site1", Visitor: uint64(i) + 1, Time: at, Timeout: timeout, Pageview: true})
			if !ok || s.ID != want.ID || s.Entry {
				t.Errorf("visitor %d after the timeout: %+v %v, want session %d without entry", i+1, s, ok, want.ID)
			}
		}
	}
	if r.Fallbacks() != n || other.Fallbacks() != 0 {
		t.Errorf("fallbacks after Redis answered: %d, %d", r.Fallbacks()-n, other.Fallbacks())
	}
}

// TestRedisSessionsOutageConcurrent cuts Redis while many visits go on:
// every hit is resolved in memory, the outage is logged once, and once Redis
// is back the visits keep their sessions, on this instance and on others.
func TestRedisSessionsOutageConcurrent(t *testing.T) {
	r, other, proxy, logs := outageStores(t)

	const visitors = 32
	// all touches every visitor at once through store and returns the sessions.
	all := func(store identity.Sessions, at time.Time, pageview bool) []identity.Session {
		t.Helper()
		out := make([]identity.Session, visitors)
		var wg sync.WaitGroup
		for v := range visitors {
			wg.Go(func() {
				s, ok := store.Touch(identity.Hit{Site: "site1", Visitor: uint64(v) + 1, Time: at, Timeout: timeout, Pageview: pageview, Create: pageview})
				if !ok {
					t.Errorf("visitor %d: no session", v+1)
				}
				out[v] = s
			})
		}
		wg.Wait()
		return out
	}

	proxy.Cut()
	during := all(r, t0, true)
	if n := r.Fallbacks(); n != visitors {
		t.Fatalf("%d fallbacks, want %d", n, visitors)
	}
	for i := range 10 {
		for v, s := range all(r, t0.Add(time.Duration(i+1)*time.Second), false) {
			if s.ID != during[v].ID {
				t.Fatalf("visitor %d during the outage: session %d, want %d", v+1, s.ID, during[v].ID)
			}
		}
	}
	if n := strings.Count(logs.String(), "unavailable"); n != 1 {
		t.Fatalf("outage logged %d times:\n%s", n, logs.String())
	}

	proxy.Restore()
	waitFor(t, "the sessions to be written", func() bool { return r.Flush() == nil })
	at := t0.Add(time.Minute)
	n := r.Fallbacks()
	for _, store := range []identity.Sessions{r, other} {
		at = at.Add(time.Second)
		for v, s := range all(store, at, false) {
			if s.ID != during[v].ID {
				t.Fatalf("visitor %d after the outage: session %d, want %d", v+1, s.ID, during[v].ID)
			}
		}
	}
	if r.Fallbacks() != n {
		t.Errorf("%d fallbacks after Redis answered", r.Fallbacks()-n)
	}
	if !strings.Contains(logs.String(), "available again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// TestRedisSessionsClose closes the store while hits wait: they and later
// hits are resolved in memory, and Close does not wait for Redis longer
// than the timeout.
func TestRedisSessionsClose(t *testing.T) {
	rdb, g := gated(t)
	r := identity.NewRedisSessions(rdb, testutil.RedisPrefix(t, "pl_test_")+":", identity.RedisOptions{Timeout: 200 * time.Millisecond, Logger: discard})

	g.Hold()
	defer g.Release()
	inFlight := holdRoundTrips(t, r)
	waiting := touchAsync(r, identity.Hit{Site: "site1", Visitor: 2, Time: t0, Timeout: timeout, Pageview: true, Create: true})
	waitFor(t, "the hit to queue", func() bool { return r.Pending() == 1 })

	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the held round trip")
	}
	for i, c := range append(inFlight, waiting) {
		if a := <-c; !a.ok {
			t.Errorf("hit %d: no session", i)
		}
	}
	if _, ok := r.Touch(identity.Hit{Site: "site1", Visitor: 3, Time: t0, Timeout: timeout, Pageview: true, Create: true}); !ok {
		t.Error("a hit after Close: no session")
	}
	if n, want := r.Fallbacks(), uint64(identity.MaxInFlight+2); n != want {
		t.Errorf("%d fallbacks, want %d", n, want)
	}
	if n := r.Batches(); n != identity.MaxInFlight {
		t.Errorf("%d batches, want %d", n, identity.MaxInFlight)
	}
}
