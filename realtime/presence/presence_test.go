package presence_test

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
	"github.com/pocketlytics/pocketlytics/realtime/presence"
	"github.com/redis/go-redis/v9"
)

// clock is a settable time source shared by a test and its stores.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	window = 5 * time.Minute
	grace  = 5 * time.Second
)

// stores returns a factory per implementation. A Redis factory call makes a
// new Store on the test's shared keys, so a test can play several instances.
func stores() map[string]func(*testing.T, *clock) presence.Store {
	return map[string]func(*testing.T, *clock) presence.Store{
		"memory": func(_ *testing.T, c *clock) presence.Store {
			return presence.NewMemory(presence.Options{Window: window, Grace: grace, Now: c.Now})
		},
		"redis": func(t *testing.T, c *clock) presence.Store {
			rdb := testutil.Redis(t)
			prefix := testutil.Unique("pltest:")
			t.Cleanup(func() { cleanup(rdb, prefix) })
			return presence.NewRedis(rdb, presence.Options{Window: window, Grace: grace, Prefix: prefix, Now: c.Now})
		},
	}
}

func cleanup(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

func pv(visitor, page string, at time.Time) presence.Hit {
	return presence.Hit{Site: "s1", Visitor: visitor, At: at, Kind: presence.Pageview, Page: page,
		Arrival: presence.Arrival{Visitor: visitor, Time: at, Entry: page, Country: "DE"}}
}

func ping(visitor string, at time.Time) presence.Hit {
	return presence.Hit{Site: "s1", Visitor: visitor, At: at, Kind: presence.Activity}
}

func leave(visitor string, at time.Time) presence.Hit {
	return presence.Hit{Site: "s1", Visitor: visitor, At: at, Kind: presence.Leave}
}

func touch(t *testing.T, st presence.Store, hits ...presence.Hit) []presence.Result {
	t.Helper()
	res, err := st.Touch(context.Background(), hits)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func prune(t *testing.T, st presence.Store) presence.Pruned {
	t.Helper()
	p, err := st.Prune(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(p[0].Expired)
	slices.Sort(p[0].Left)
	return p[0]
}

func settle(t *testing.T, st presence.Store, visitor string, at time.Time) bool {
	t.Helper()
	ok, err := st.Settle(context.Background(), []presence.Departure{{Site: "s1", Visitor: visitor, At: at}})
	if err != nil {
		t.Fatal(err)
	}
	return ok[0]
}

func TestPresence(t *testing.T) {
	for impl, open := range stores() {
		t.Run(impl, func(t *testing.T) {
			t.Run("tabs count once", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				res := touch(t, st,
					pv("a", "/", t0),
					pv("a", "/pricing", t0.Add(time.Second)), // second tab
					ping("a", t0.Add(2*time.Second)),
					pv("b", "/docs", t0.Add(3*time.Second)),
				)
				want := []presence.Result{{Arrived: true}, {PrevPage: "/"}, {PrevPage: "/pricing"}, {Arrived: true}}
				if !reflect.DeepEqual(res, want) {
					t.Fatalf("results %+v, want %+v", res, want)
				}
				c.Set(t0.Add(4 * time.Second))
				if p := prune(t, st); p.Count != 2 {
					t.Fatalf("count %d, want 2", p.Count)
				}
			})

			t.Run("leave removes the visitor after the grace period", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				touch(t, st, pv("a", "/", t0), pv("b", "/", t0))
				at := t0.Add(10 * time.Second)
				c.Set(at)
				if res := touch(t, st, leave("a", at)); !res[0].Leaving {
					t.Fatalf("leave result %+v, want Leaving", res[0])
				}
				if p := prune(t, st); p.Count != 2 {
					t.Fatalf("count during grace %d, want 2", p.Count)
				}
				c.Set(at.Add(grace))
				if !settle(t, st, "a", at) {
					t.Fatal("settle did not remove the visitor")
				}
				if settle(t, st, "a", at) {
					t.Fatal("second settle removed the visitor again")
				}
				if p := prune(t, st); p.Count != 1 || p.Left != nil || p.Expired != nil {
					t.Fatalf("after settle %+v, want count 1 and nothing pruned", p)
				}
			})

			t.Run("navigation cancels the leave", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				touch(t, st, pv("a", "/", t0))
				at := t0.Add(10 * time.Second)
				c.Set(at)
				touch(t, st, leave("a", at))
				res := touch(t, st, pv("a", "/next", at.Add(800*time.Millisecond)))
				if res[0].Arrived || res[0].PrevPage != "/" {
					t.Fatalf("pageview after leave %+v, want a page change of a live visitor", res[0])
				}
				c.Set(at.Add(time.Minute))
				if settle(t, st, "a", at) {
					t.Fatal("settle removed a visitor whose leave was cancelled")
				}
				if p := prune(t, st); p.Count != 1 {
					t.Fatalf("count %d, want 1", p.Count)
				}
			})

			t.Run("hits older than the leave are stale", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				touch(t, st, pv("a", "/", t0))
				at := t0.Add(10 * time.Second)
				c.Set(at)
				touch(t, st, leave("a", at))
				if res := touch(t, st, ping("a", at.Add(-time.Second))); !res[0].Stale {
					t.Fatalf("late ping %+v, want Stale", res[0])
				}
				c.Set(at.Add(grace))
				if !settle(t, st, "a", at) {
					t.Fatal("a stale hit cancelled the leave")
				}
			})

			t.Run("a leave older than the last hit is ignored", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				touch(t, st, pv("a", "/", t0), ping("a", t0.Add(20*time.Second)))
				c.Set(t0.Add(21 * time.Second))
				if res := touch(t, st, leave("a", t0.Add(10*time.Second))); res[0].Leaving {
					t.Fatal("an out-of-order leave started a grace period")
				}
			})

			t.Run("expiry", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				touch(t, st, pv("a", "/", t0), pv("b", "/", t0.Add(time.Minute)))
				c.Set(t0.Add(window))
				if p := prune(t, st); p.Count != 1 || !reflect.DeepEqual(p.Expired, []string{"a"}) {
					t.Fatalf("after the window %+v, want count 1, expired [a]", p)
				}
				if p := prune(t, st); p.Expired != nil {
					t.Fatalf("expiry reported twice: %+v", p)
				}
				// An unsettled leave (the process died) still ends the visit, reported as left.
				at := t0.Add(window + time.Second)
				touch(t, st, leave("b", at))
				c.Set(at.Add(grace))
				if p := prune(t, st); p.Count != 0 || !reflect.DeepEqual(p.Left, []string{"b"}) {
					t.Fatalf("after an unsettled leave %+v, want count 0, left [b]", p)
				}
				if settle(t, st, "b", at) {
					t.Fatal("settle reported a visitor the prune already removed")
				}
				// Coming back after expiry is a new arrival.
				if res := touch(t, st, ping("a", at.Add(grace))); !res[0].Arrived {
					t.Fatalf("return after expiry %+v, want Arrived", res[0])
				}
			})

			t.Run("snapshot", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				h := pv("a", "/", t0)
				h.Referrer = "news.ycombinator.com"
				touch(t, st, h,
					pv("b", "/", t0.Add(time.Second)),
					pv("c", "/docs", t0.Add(2*time.Second)),
					pv("a", "/pricing", t0.Add(3*time.Second)),
				)
				at := t0.Add(4 * time.Second)
				c.Set(at)
				touch(t, st, leave("c", at))
				c.Set(at.Add(grace))
				settle(t, st, "c", at)

				snap, err := st.Snapshot(context.Background(), "s1", 10)
				if err != nil {
					t.Fatal(err)
				}
				if snap.Count != 2 {
					t.Fatalf("count %d, want 2", snap.Count)
				}
				var got []string
				for _, a := range snap.Arrivals {
					got = append(got, a.Visitor+" "+a.Entry+" "+a.Page+" "+a.Country)
				}
				if want := []string{"b / / DE", "a / /pricing DE"}; !reflect.DeepEqual(got, want) {
					t.Fatalf("arrivals %q, want %q", got, want)
				}
				if want := []presence.Tally{{Value: "/", Visitors: 1}, {Value: "/pricing", Visitors: 1}}; !reflect.DeepEqual(snap.Pages, want) {
					t.Fatalf("pages %+v, want %+v", snap.Pages, want)
				}
				if want := []presence.Tally{{Value: "news.ycombinator.com", Visitors: 1}}; !reflect.DeepEqual(snap.Referrers, want) {
					t.Fatalf("referrers %+v, want %+v", snap.Referrers, want)
				}
			})

			t.Run("online series", func(t *testing.T) {
				c := &clock{t: t0}
				st := open(t, c)
				touch(t, st, pv("a", "/", t0), pv("b", "/", t0))
				if _, err := st.Sample(context.Background()); err != nil {
					t.Fatal(err)
				}
				c.Set(t0.Add(2 * time.Minute))
				touch(t, st, pv("c", "/", t0.Add(2*time.Minute)))
				if _, err := st.Sample(context.Background()); err != nil {
					t.Fatal(err)
				}
				got, err := st.Series(context.Background(), "s1", t0.Add(-time.Minute), t0.Add(2*time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				if want := []int{0, 2, 0, 3}; !reflect.DeepEqual(got, want) {
					t.Fatalf("series %v, want %v", got, want)
				}
			})
		})
	}
}

// TestRedisShared plays two instances on one Redis: they agree on the count,
// and only one of them samples a given minute.
func TestRedisShared(t *testing.T) {
	rdb := testutil.Redis(t)
	prefix := testutil.Unique("pltest:")
	t.Cleanup(func() { cleanup(rdb, prefix) })
	c := &clock{t: t0}
	open := func() presence.Store {
		return presence.NewRedis(rdb, presence.Options{Window: window, Grace: grace, Prefix: prefix, Now: c.Now})
	}
	a, b := open(), open()

	touch(t, a, pv("v1", "/", t0))
	if res := touch(t, b, pv("v1", "/x", t0.Add(time.Second))); res[0].Arrived || res[0].PrevPage != "/" {
		t.Fatalf("second instance saw %+v, want a known visitor on /", res[0])
	}
	touch(t, b, pv("v2", "/", t0.Add(time.Second)))
	if p := prune(t, a); p.Count != 2 {
		t.Fatalf("count on the first instance %d, want 2", p.Count)
	}

	pa, err := a.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pa) != 1 || pb != nil {
		t.Fatalf("samples: first %+v, second %+v; want exactly one instance to sample", pa, pb)
	}

	// Keys expire on their own when the site goes quiet.
	ttl, err := rdb.PTTL(context.Background(), prefix+":{s1}:seen").Result()
	if err != nil || ttl <= 0 || ttl > window+grace+time.Minute {
		t.Fatalf("seen key TTL %v (%v), want a bounded expiry", ttl, err)
	}
}

// TestRedisOutage: a store made while Redis is down fails its calls (no
// panic, nothing kept) and serves again once Redis answers, also a Redis
// that forgot the scripts (restart, SCRIPT FLUSH). It runs on a private
// redis-server, so stopping it and SCRIPT FLUSH disturb no other test.
func TestRedisOutage(t *testing.T) {
	srv := livetest.NewRedisServer(t) // not running yet
	rdb := srv.Client()
	ctx := context.Background()
	c := &clock{t: t0}
	st := presence.NewRedis(rdb, presence.Options{Now: c.Now})

	down := func(when string) {
		t.Helper()
		if _, err := st.Touch(ctx, []presence.Hit{pv("a", "/", t0)}); err == nil {
			t.Fatalf("touch %s: no error", when)
		}
		if _, err := st.Snapshot(ctx, "s1", 10); err == nil {
			t.Fatalf("snapshot %s: no error", when)
		}
	}
	down("before Redis ran")

	srv.Start()
	if res := touch(t, st, pv("a", "/", t0)); !res[0].Arrived {
		t.Fatalf("first touch %+v, want Arrived", res[0])
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if res := touch(t, st, pv("a", "/b", t0)); res[0].Arrived || res[0].PrevPage != "/" {
		t.Fatalf("after SCRIPT FLUSH %+v, want a known visitor on /", res[0])
	}

	srv.Stop()
	down("while Redis is down")
	srv.Start() // a fresh server: data and scripts gone
	if res := touch(t, st, pv("a", "/", t0)); !res[0].Arrived {
		t.Fatalf("after the restart %+v, want Arrived", res[0])
	}
}
