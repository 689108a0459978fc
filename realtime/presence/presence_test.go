package presence_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
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
			prefix := testutil.RedisPrefix(t, "pltest:")
			return presence.NewRedis(rdb, presence.Options{Window: window, Grace: grace, Prefix: prefix, Now: c.Now})
		},
	}
}

func pv(visitor, page string, at time.Time) presence.Sighting {
	return presence.Sighting{Site: "s1", Visitor: visitor, At: at, Kind: presence.Pageview, Page: page,
		Arrival: presence.Arrival{Visitor: visitor, Time: at, Entry: page, Country: "DE"}}
}

func ping(visitor string, at time.Time) presence.Sighting {
	return presence.Sighting{Site: "s1", Visitor: visitor, At: at, Kind: presence.Activity}
}

func leave(visitor string, at time.Time) presence.Sighting {
	return presence.Sighting{Site: "s1", Visitor: visitor, At: at, Kind: presence.Leave}
}

// on moves a hit to another site.
func on(site string, h presence.Sighting) presence.Sighting {
	h.Site = site
	return h
}

func touch(t *testing.T, st presence.Store, hits ...presence.Sighting) []presence.Result {
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

			t.Run("a batch applies each site's hits in order", func(t *testing.T) {
				c := &clock{t: t0.Add(6 * time.Second)}
				st := open(t, c)
				ref := pv("c", "/", t0.Add(6*time.Second))
				ref.Referrer = "example.com"
				res := touch(t, st,
					pv("a", "/", t0),
					on("s2", pv("a", "/x", t0)),        // the same key on another site is another visitor
					pv("a", "/b", t0.Add(time.Second)), // page change
					leave("a", t0.Add(2*time.Second)),  // grace starts
					on("s2", pv("b", "/y", t0.Add(2*time.Second))),
					ping("a", t0.Add(3*time.Second)),  // cancels the leave, keeps /b
					leave("a", t0.Add(4*time.Second)), // grace starts again
					ping("a", t0.Add(4*time.Second)),  // not after the leave: stale
					on("s2", pv("a", "/z", t0.Add(5*time.Second))),
					on("s2", leave("b", t0.Add(5*time.Second))),
					on("s2", pv("b", "/w", t0.Add(6*time.Second))), // navigation: cancels b's leave
					leave("x", t0.Add(6*time.Second)),              // unknown visitor: nothing
					ref,
				)
				want := []presence.Result{
					{Arrived: true}, {Arrived: true}, {PrevPage: "/"}, {Leaving: true}, {Arrived: true},
					{PrevPage: "/b"}, {Leaving: true}, {Stale: true}, {PrevPage: "/x"}, {Leaving: true},
					{PrevPage: "/y"}, {}, {Arrived: true},
				}
				if !reflect.DeepEqual(res, want) {
					t.Fatalf("results\n%+v\nwant\n%+v", res, want)
				}

				c.Set(t0.Add(4*time.Second + grace))
				gone, err := st.Settle(context.Background(), []presence.Departure{
					{Site: "s1", Visitor: "a", At: t0.Add(2 * time.Second)}, // superseded by the second leave
					{Site: "s2", Visitor: "b", At: t0.Add(5 * time.Second)}, // cancelled by the navigation
					{Site: "s1", Visitor: "a", At: t0.Add(4 * time.Second)}, // the stale ping did not cancel it
					{Site: "s1", Visitor: "a", At: t0.Add(4 * time.Second)}, // already removed
				})
				if want := []bool{false, false, true, false}; err != nil || !reflect.DeepEqual(gone, want) {
					t.Fatalf("settle %v (%v), want %v", gone, err, want)
				}
				for _, tc := range []struct {
					site     string
					arrivals []string
					pages    []presence.Tally
					refs     []presence.Tally
				}{
					{"s1", []string{"c /"}, []presence.Tally{{Value: "/", Visitors: 1}}, []presence.Tally{{Value: "example.com", Visitors: 1}}},
					{"s2", []string{"b /w", "a /z"}, []presence.Tally{{Value: "/w", Visitors: 1}, {Value: "/z", Visitors: 1}}, []presence.Tally{}},
				} {
					snap, err := st.Snapshot(context.Background(), tc.site, 10)
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, a := range snap.Arrivals {
						got = append(got, a.Visitor+" "+a.Page)
					}
					if snap.Count != len(tc.arrivals) || !reflect.DeepEqual(got, tc.arrivals) ||
						!reflect.DeepEqual(snap.Pages, tc.pages) || !reflect.DeepEqual(snap.Referrers, tc.refs) {
						t.Fatalf("%s: count %d, arrivals %q, pages %+v, referrers %+v; want arrivals %q, pages %+v, referrers %+v",
							tc.site, snap.Count, got, snap.Pages, snap.Referrers, tc.arrivals, tc.pages, tc.refs)
					}
				}
			})

			t.Run("arrival, leave and return in one batch", func(t *testing.T) {
				c := &clock{t: t0.Add(20 * time.Second)}
				st := open(t, c)
				res := touch(t, st,
					pv("a", "/", t0),
					leave("a", t0.Add(10*time.Second)), // its grace has ended by now
					pv("a", "/back", t0.Add(19*time.Second)),
					ping("a", t0.Add(19*time.Second)),
				)
				want := []presence.Result{{Arrived: true}, {Leaving: true}, {Arrived: true}, {PrevPage: "/back"}}
				if !reflect.DeepEqual(res, want) {
					t.Fatalf("results %+v, want %+v", res, want)
				}
				if settle(t, st, "a", t0.Add(10*time.Second)) {
					t.Fatal("settle removed a visitor who came back")
				}
				if p := prune(t, st); p.Count != 1 || p.Left != nil || p.Expired != nil {
					t.Fatalf("after the return %+v, want count 1 and nothing pruned", p)
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
	prefix := testutil.RedisPrefix(t, "pltest:")
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
		if _, err := st.Touch(ctx, []presence.Sighting{pv("a", "/", t0)}); err == nil {
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

// TestRedisBatchesAgree plays random batches (several sites, few visitors,
// hits out of order, leaves, settles, expiry) on Memory, on Redis and on
// Redis with the former one-script-call-per-hit touch and settle: every
// result, count, removal and snapshot must agree, and the batched store's
// keys must exist and have a TTL exactly when the per-hit store's do.
func TestRedisBatchesAgree(t *testing.T) {
	rdb := testutil.Redis(t)
	ctx := context.Background()
	c := &clock{t: t0}
	prefixes := []string{testutil.RedisPrefix(t, "pltest:"), testutil.RedisPrefix(t, "pltest:")}
	opts := func(prefix string) presence.Options {
		// A short window and a short arrivals list, so expiry and trimming happen.
		return presence.Options{Window: 30 * time.Second, Grace: grace, Arrivals: 3, Prefix: prefix, Now: c.Now}
	}
	mem := presence.NewMemory(opts(""))
	batched := presence.NewRedis(rdb, opts(prefixes[0]))
	perHit := presence.NewRedis(rdb, opts(prefixes[1]))
	stores := []presence.Store{mem, batched, perHit}
	names := []string{"memory", "redis", "redis per hit"}

	sites := []string{"s1", "s2", "s3"}
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	var pending []presence.Departure
	for round := range 300 {
		now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		c.Set(now)
		hits := make([]presence.Sighting, 1+rng.IntN(40))
		for i := range hits {
			v := string(rune('a' + rng.IntN(5)))
			at := now.Add(-time.Duration(rng.IntN(4000)) * time.Millisecond)
			switch rng.IntN(4) {
			case 0:
				hits[i] = ping(v, at)
			case 1:
				hits[i] = leave(v, at)
			default:
				hits[i] = pv(v, "/"+strconv.Itoa(rng.IntN(4)), at)
				hits[i].Referrer = []string{"", "example.com"}[rng.IntN(2)]
			}
			hits[i].Site = sites[rng.IntN(len(sites))]
		}

		want := touch(t, mem, hits...)
		got := touch(t, batched, hits...)
		old, err := presence.TouchPerHit(ctx, perHit, hits)
		if err != nil {
			t.Fatal(err)
		}
		for i := range hits {
			if got[i] != want[i] || old[i] != want[i] {
				t.Fatalf("round %d, hit %d %+v: memory %+v, redis %+v, redis per hit %+v", round, i, hits[i], want[i], got[i], old[i])
			}
			if want[i].Leaving {
				pending = append(pending, presence.Departure{Site: hits[i].Site, Visitor: hits[i].Visitor, At: hits[i].At})
			}
		}
		sameKeys(t, rdb, prefixes[0], prefixes[1], sites)

		if rng.IntN(3) == 0 && len(pending) > 0 {
			n := rng.IntN(len(pending)) + 1
			var first []bool
			for k, st := range stores {
				var gone []bool
				var err error
				if st == perHit {
					gone, err = presence.SettlePerDeparture(ctx, perHit, pending[:n])
				} else {
					gone, err = st.Settle(ctx, pending[:n])
				}
				if err != nil {
					t.Fatal(err)
				}
				if k == 0 {
					first = gone
				} else if !reflect.DeepEqual(gone, first) {
					t.Fatalf("round %d: settle on %s %v, on memory %v", round, names[k], gone, first)
				}
			}
			pending = pending[n:]
		}
		if rng.IntN(4) == 0 {
			var first []string
			for k, st := range stores {
				var got []string
				for _, site := range sites {
					snap, err := st.Snapshot(ctx, site, 10)
					if err != nil {
						t.Fatal(err)
					}
					slices.Sort(snap.Pruned.Expired)
					slices.Sort(snap.Pruned.Left)
					got = append(got, fmt.Sprintf("%s: %d %v %v %v %v", site, snap.Count, snap.Pruned.Expired, snap.Pruned.Left, snap.Pages, snap.Referrers))
					for _, a := range snap.Arrivals {
						got = append(got, a.Visitor+" "+a.Entry+" "+a.Page+" "+a.Referrer)
					}
				}
				if k == 0 {
					first = got
				} else if !reflect.DeepEqual(got, first) {
					t.Fatalf("round %d: snapshot on %s\n%q\non memory\n%q", round, names[k], got, first)
				}
			}
		}
	}
}

// sameKeys fails unless the site keys under two prefixes exist, and carry
// a TTL, alike.
func sameKeys(t *testing.T, rdb *redis.Client, a, b string, sites []string) {
	t.Helper()
	ctx := context.Background()
	for _, site := range sites {
		for _, name := range []string{"seen", "left", "page", "ref", "arr"} {
			ka, kb := a+":{"+site+"}:"+name, b+":{"+site+"}:"+name
			ta, err := rdb.PTTL(ctx, ka).Result()
			if err != nil {
				t.Fatal(err)
			}
			tb, err := rdb.PTTL(ctx, kb).Result()
			if err != nil {
				t.Fatal(err)
			}
			// -2: no key, -1: no TTL (never right), else a TTL.
			if state(ta) != state(tb) || state(ta) == -1 {
				t.Fatalf("key %s: TTL %v, per hit %v", ka, ta, tb)
			}
			if ta > 0 && (ta-tb).Abs() > time.Second {
				t.Fatalf("key %s: TTL %v, per hit %v", ka, ta, tb)
			}
		}
	}
}

// state is a PTTL reply without the TTL's value: -2 (no key), -1 (no TTL) or 1.
func state(ttl time.Duration) time.Duration { return min(ttl, 1) }
