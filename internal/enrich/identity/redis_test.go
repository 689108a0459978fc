package identity_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// redisTimeout replaces the 50ms default in tests of what sessions Redis
// gives: the test server is shared with parallel packages and may stall.
const redisTimeout = 5 * time.Second

func TestRedisSessionsKey(t *testing.T) {
	rdb := testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	r := identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{Timeout: redisTimeout})
	t.Cleanup(func() { r.Close() })

	s, ok := r.Touch(identity.Hit{Site: "site1", Visitor: 42, Time: t0, Timeout: timeout, Pageview: true, Create: true})
	if !ok {
		t.Fatal("not created")
	}
	ctx := context.Background()
	key := prefix + "sess:site1:42"
	got, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	ms := strconv.FormatInt(t0.UnixMilli(), 10)
	want := map[string]string{"id": strconv.FormatUint(s.ID, 10), "start": ms, "last": ms, "entered": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (hash %v)", k, got[k], v, got)
		}
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= timeout-time.Minute || ttl > timeout {
		t.Errorf("PTTL = %v, want about %v", ttl, timeout)
	}
	// A ping five minutes later is answered from memory, and written
	// behind: the key is renewed for a full timeout from then.
	batches := r.Batches()
	if s2, ok := r.Touch(identity.Hit{Site: "site1", Visitor: 42, Time: t0.Add(5 * time.Minute), Timeout: timeout}); !ok || s2.ID != s.ID {
		t.Fatalf("the ping: %+v %v, want session %d", s2, ok, s.ID)
	}
	if r.Local() != 1 || r.Batches() != batches {
		t.Fatalf("the ping waited for Redis: %d local, %d script calls", r.Local(), r.Batches()-batches)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if last := rdb.HGet(ctx, key, "last").Val(); last != strconv.FormatInt(t0.Add(5*time.Minute).UnixMilli(), 10) {
		t.Errorf("last after the ping = %s, want the ping's time", last)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= timeout-time.Minute || ttl > timeout {
		t.Errorf("PTTL after a ping = %v, want about %v", ttl, timeout)
	}
}

// TestRedisSessionsShared runs one visit's hits concurrently through two
// stores, as two instances behind a load balancer would.
func TestRedisSessionsShared(t *testing.T) {
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	instances := []*identity.RedisSessions{
		identity.NewRedisSessions(testutil.Redis(t), prefix, identity.RedisOptions{Timeout: redisTimeout}),
		identity.NewRedisSessions(testutil.Redis(t), prefix, identity.RedisOptions{Timeout: redisTimeout}),
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[uint64]int{}
		entries atomic.Int32
	)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				r := instances[(g+i)%2]
				s, ok := r.Touch(identity.Hit{Site: "site1", Visitor: 7, Time: t0.Add(time.Duration(i) * time.Second), Timeout: timeout, Pageview: true, Create: true})
				if !ok {
					t.Error("touch failed")
					return
				}
				if s.Entry {
					entries.Add(1)
				}
				mu.Lock()
				ids[s.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("one visit split into %d sessions: %v", len(ids), ids)
	}
	if n := entries.Load(); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
	for i, r := range instances {
		if n := r.Fallbacks(); n != 0 {
			t.Errorf("instance %d: %d fallbacks", i, n)
		}
		r.Close()
	}
}

// proxied returns a client for the test Redis through a proxy the test can cut.
func proxied(t *testing.T) (*redis.Client, *testutil.Proxy) {
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, opts.Addr)
	opts.Addr = proxy.Addr
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb, proxy
}

// outageStores returns two stores on one Redis under a fresh prefix: r
// reaches it through proxy, which a test can cut, and logs what r logs;
// other reaches it directly.
func outageStores(t *testing.T) (r, other *identity.RedisSessions, proxy *testutil.Proxy, logs *syncBuffer) {
	t.Helper()
	rdb, proxy := proxied(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	logs = &syncBuffer{}
	r = identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{
		Timeout:       redisTimeout, // a cut connection fails at once
		RetryInterval: 20 * time.Millisecond,
		Logger:        func() *slog.Logger { return slog.New(slog.NewTextHandler(logs, nil)) },
	})
	other = identity.NewRedisSessions(testutil.Redis(t), prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard})
	t.Cleanup(func() { r.Close(); other.Close() })
	return r, other, proxy, logs
}

// TestRedisSessionsOutage cuts one instance off Redis: its hits are resolved
// in memory at once, visits it has seen go on, the outage is logged once,
// and the sessions it started meanwhile reach Redis when it answers again.
func TestRedisSessionsOutage(t *testing.T) {
	r, other, proxy, logs := outageStores(t)

	at := t0
	hit := func(store identity.Sessions, visitor uint64, pageview bool) identity.Session {
		t.Helper()
		at = at.Add(time.Second)
		s, ok := store.Touch(identity.Hit{Site: "site1", Visitor: visitor, Time: at, Timeout: timeout, Pageview: pageview, Create: pageview})
		if !ok {
			t.Fatalf("visitor %d: no session", visitor)
		}
		return s
	}
	before := hit(r, 1, true)
	if r.Fallbacks() != 0 {
		t.Fatalf("%d fallbacks before the outage", r.Fallbacks())
	}

	proxy.Cut()
	if s := hit(r, 1, false); s.ID != before.ID {
		t.Fatalf("a visit seen before the outage: session %d, want %d", s.ID, before.ID)
	}
	during := hit(r, 2, true)
	if !during.Entry {
		t.Fatal("a new visit during the outage has no entry")
	}
	hit(r, 4, true) // two more new visits: three failures in a row
	hit(r, 5, true)
	for range 20 {
		if s := hit(r, 2, false); s.ID != during.ID {
			t.Fatalf("a ping during the outage: session %d, want %d", s.ID, during.ID)
		}
	}
	// The new visits' pageviews fell back; the other hits continued
	// sessions live in memory, which needs no Redis.
	if n, local := r.Fallbacks(), r.Local(); n != 3 || local != 21 {
		t.Fatalf("%d fallbacks and %d local hits, want 3 and 21", n, local)
	}
	if n := strings.Count(logs.String(), "unavailable"); n != 1 {
		t.Fatalf("outage logged %d times:\n%s", n, logs.String())
	}
	if s := hit(other, 1, false); s.ID != before.ID {
		t.Fatalf("another instance: session %d, want %d", s.ID, before.ID)
	}

	proxy.Restore()
	waitFor(t, "the sessions to be written", func() bool { return r.Flush() == nil })
	if s := hit(r, 2, false); s.ID != during.ID {
		t.Fatalf("after the outage: session %d, want %d", s.ID, during.ID)
	}
	n := r.Fallbacks()
	if s := hit(r, 3, true); !s.Entry || r.Fallbacks() != n {
		t.Fatalf("a new visit after the outage: %+v, %d fallbacks", s, r.Fallbacks()-n)
	}
	// The session started in memory is now in Redis for every instance.
	if s := hit(other, 2, false); s.ID != during.ID {
		t.Fatalf("another instance after the outage: session %d, want %d", s.ID, during.ID)
	}
	if !strings.Contains(logs.String(), "available again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// TestRedisSessionsFailuresInARow fails the hits of visitors whose keys hold
// something else: each goes to memory, but Redis counts as down only after
// failures in a row.
func TestRedisSessionsFailuresInARow(t *testing.T) {
	rdb := testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	var logs syncBuffer
	r := identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{
		Timeout: redisTimeout,
		Logger:  func() *slog.Logger { return slog.New(slog.NewTextHandler(&logs, nil)) },
	})
	t.Cleanup(func() { r.Close() })
	const poisoned = 600 // visitors 600 to 608
	for v := range 9 {
		key := prefix + "sess:site1:" + strconv.Itoa(poisoned+v)
		if err := rdb.Set(context.Background(), key, "not a session", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}

	at, next := t0, uint64(poisoned)
	touch := func(visitor uint64) {
		t.Helper()
		at = at.Add(time.Second)
		if _, ok := r.Touch(identity.Hit{Site: "site1", Visitor: visitor, Time: at, Timeout: timeout, Pageview: true, Create: true}); !ok {
			t.Fatalf("visitor %d: no session", visitor)
		}
	}
	bad := func() { touch(next); next++ }
	for i := range 3 {
		bad()
		bad()
		touch(uint64(i + 1)) // answered: the count starts over
	}
	if n := r.Fallbacks(); n != 6 {
		t.Fatalf("%d fallbacks, want 6", n)
	}
	if logs.String() != "" {
		t.Fatalf("logged before %d failures in a row:\n%s", 3, logs.String())
	}
	bad()
	bad()
	bad()
	if !strings.Contains(logs.String(), "WRONGTYPE") {
		t.Fatalf("3 failures in a row not logged:\n%s", logs.String())
	}
}

// TestRedisSessionsSlow points the store at a server that accepts
// connections and never answers: the hit must be resolved in memory after
// the store's timeout, not after the client's one-minute read timeout.
func TestRedisSessionsSlow(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testutil.SilentServer(t), ReadTimeout: time.Minute, WriteTimeout: time.Minute, DialTimeout: time.Minute})
	t.Cleanup(func() { rdb.Close() })
	r := identity.NewRedisSessions(rdb, "pl_test:", identity.RedisOptions{Timeout: 50 * time.Millisecond, Logger: discard})
	t.Cleanup(func() { r.Close() })

	done := make(chan bool)
	go func() {
		_, ok := r.Touch(identity.Hit{Site: "site1", Visitor: 1, Time: t0, Timeout: timeout, Pageview: true, Create: true})
		done <- ok
	}()
	select {
	case ok := <-done:
		if !ok || r.Fallbacks() != 1 {
			t.Fatalf("ok %v, %d fallbacks", ok, r.Fallbacks())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the hit waited for the silent server")
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func BenchmarkRedisTouch(b *testing.B) {
	rdb := testutil.Redis(b)
	r := identity.NewRedisSessions(rdb, testutil.RedisPrefix(b, "pl_bench_")+":", identity.RedisOptions{Logger: discard})
	b.Cleanup(func() { r.Close() })
	b.ReportAllocs()
	cost := startRedisCost(b, rdb)
	i := uint64(0)
	for b.Loop() {
		i++
		r.Touch(identity.Hit{Site: "site1", Visitor: i%1000 + 1, Previous: i%1000 + 5000, Time: t0, Timeout: timeout, Pageview: true, Create: true})
	}
	cost.report(b)
	b.ReportMetric(float64(r.Fallbacks()), "fallbacks")
}

// BenchmarkRedisTouchParallel touches from many goroutines at once, as
// concurrent requests do: 16 per CPU, 1,000 visitors, each hit a
// millisecond after the one before.
func BenchmarkRedisTouchParallel(b *testing.B) {
	rdb := testutil.Redis(b)
	r := identity.NewRedisSessions(rdb, testutil.RedisPrefix(b, "pl_bench_")+":", identity.RedisOptions{Logger: discard})
	b.Cleanup(func() { r.Close() })
	b.ReportAllocs()
	b.SetParallelism(16)
	var next, missed atomic.Uint64
	cost := startRedisCost(b, rdb)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			pageview := i/1000%4 == 0 // a pageview, then three pings
			if _, ok := r.Touch(identity.Hit{
				Site: "site1", Visitor: i%1000 + 1, Previous: i%1000 + 5000,
				Time: t0.Add(time.Duration(i) * time.Millisecond), Timeout: timeout,
				Pageview: pageview, Create: pageview,
			}); !ok {
				missed.Add(1) // a ping overtook its visitor's pageview
			}
		}
	})
	cost.report(b)
	b.ReportMetric(float64(r.Fallbacks()), "fallbacks")
	b.ReportMetric(float64(missed.Load()), "nosession")
}

// redisCost measures what a benchmark costs the Redis server, from INFO:
// its CPU time and its script calls. The server may be shared, so the
// figures are only clean on a server of the benchmark's own.
type redisCost struct {
	rdb     *redis.Client
	cpu     float64 // seconds
	scripts int64
}

func startRedisCost(b *testing.B, rdb *redis.Client) *redisCost {
	c := &redisCost{rdb: rdb}
	c.cpu, c.scripts = c.read(b)
	return c
}

func (c *redisCost) report(b *testing.B) {
	cpu, scripts := c.read(b)
	b.ReportMetric((cpu-c.cpu)*1e9/float64(b.N), "redis-ns/op")
	b.ReportMetric(float64(scripts-c.scripts)/float64(b.N), "scripts/op")
}

func (c *redisCost) read(b *testing.B) (cpu float64, scripts int64) {
	info, err := c.rdb.Info(context.Background(), "cpu", "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "used_cpu_sys:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		} else if v, ok := strings.CutPrefix(line, "used_cpu_user:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		} else if v, ok := strings.CutPrefix(line, "cmdstat_evalsha:calls="); ok {
			v, _, _ = strings.Cut(v, ",")
			n, _ := strconv.ParseInt(v, 10, 64)
			scripts += n
		} else if v, ok := strings.CutPrefix(line, "cmdstat_eval:calls="); ok {
			v, _, _ = strings.Cut(v, ",")
			n, _ := strconv.ParseInt(v, 10, 64)
			scripts += n
		}
	}
	return cpu, scripts
}

// BenchmarkRedisPing is the bare round trip, the floor of BenchmarkRedisTouch.
func BenchmarkRedisPing(b *testing.B) {
	rdb := testutil.Redis(b)
	ctx := context.Background()
	for b.Loop() {
		if err := rdb.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestRedisSessionsWriteBehind checks what other instances see of the hits
// an instance answered from memory: the session they extended, once written
// behind, and whether it was entered.
func TestRedisSessionsWriteBehind(t *testing.T) {
	rdb := testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	newStore := func() *identity.RedisSessions {
		r := identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard})
		t.Cleanup(func() { r.Close() })
		return r
	}
	a, b := newStore(), newStore()
	touch := func(r *identity.RedisSessions, visitor uint64, at time.Duration, pageview bool) identity.Session {
		t.Helper()
		s, ok := r.Touch(identity.Hit{Site: "site1", Visitor: visitor, Time: t0.Add(at), Timeout: timeout, Pageview: pageview, Create: true})
		if !ok {
			t.Fatalf("visitor %d at %v: no session", visitor, at)
		}
		return s
	}
	ctx := context.Background()

	t.Run("written within the delay", func(t *testing.T) {
		s := touch(a, 1, 0, true)
		local := a.Local()
		touch(a, 1, 20*time.Minute, false) // memory: a knows the visit
		if a.Local() != local+1 {
			t.Fatal("the ping was not answered from memory")
		}
		want := strconv.FormatInt(t0.Add(20*time.Minute).UnixMilli(), 10)
		waitFor(t, "the ping to reach Redis", func() bool {
			return rdb.HGet(ctx, prefix+"sess:site1:1", "last").Val() == want
		})
		// 40 minutes after the pageview, 20 after the ping: still on.
		if got := touch(b, 1, 40*time.Minute, true); got.ID != s.ID || got.Entry {
			t.Fatalf("the other instance: %+v, want session %d without entry", got, s.ID)
		}
	})

	t.Run("session lost by Redis", func(t *testing.T) {
		first := touch(a, 2, 0, true)
		rdb.Del(ctx, prefix+"sess:site1:2")
		// a still answers from memory, and writes the session back.
		if got := touch(a, 2, time.Minute, false); got.ID != first.ID {
			t.Fatalf("session %d, want %d from memory", got.ID, first.ID)
		}
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := touch(b, 2, 2*time.Minute, true); got.ID != first.ID || got.Entry {
			t.Fatalf("the other instance: %+v, want session %d written back, without entry", got, first.ID)
		}

		// Lost again, and an instance that never saw the visit starts
		// another session meanwhile: a, which still has the first one
		// live in memory, moves to the new one once it writes behind.
		rdb.Del(ctx, prefix+"sess:site1:2")
		other := touch(newStore(), 2, 5*time.Minute, true)
		if other.ID == first.ID || !other.Entry {
			t.Fatalf("a new instance: %+v, want a new session", other)
		}
		if got := touch(a, 2, 6*time.Minute, false); got.ID != first.ID {
			t.Fatalf("session %d, want %d from memory", got.ID, first.ID)
		}
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := touch(a, 2, 7*time.Minute, false); got.ID != other.ID {
			t.Fatalf("a after writing behind: session %d, want the new %d", got.ID, other.ID)
		}
	})

	t.Run("entry decided by Redis", func(t *testing.T) {
		// An event starts a session without an entry; the first pageview,
		// on the other instance, is its entry; a's memory does not know
		// it, so a's pageview asks Redis and is no second entry.
		touch(a, 3, 0, false)
		if got := touch(b, 3, time.Second, true); !got.Entry {
			t.Fatal("the first pageview is not the entry")
		}
		local := a.Local()
		if got := touch(a, 3, 2*time.Second, true); got.Entry {
			t.Fatal("a second entry")
		}
		if a.Local() != local {
			t.Fatal("a pageview that could be the entry was answered from memory")
		}
	})

	t.Run("not written within the slack", func(t *testing.T) {
		// Hits less than 1/60 of the timeout (30 s of 30 minutes) past
		// what Redis holds stay in memory; the first one beyond is
		// written, and what Redis holds moves on with it.
		key := prefix + "sess:site1:5"
		last := func() string { return rdb.HGet(ctx, key, "last").Val() }
		msAt := func(at time.Duration) string { return strconv.FormatInt(t0.Add(at).UnixMilli(), 10) }
		s := touch(a, 5, 0, true)
		if err := a.Flush(); err != nil { // what earlier subtests left
			t.Fatal(err)
		}
		batches := a.Batches()
		touch(a, 5, 10*time.Second, false)
		touch(a, 5, 30*time.Second, true) // a pageview, not the entry
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		if a.Batches() != batches || last() != msAt(0) {
			t.Fatalf("hits within the slack: %d script calls, last %s, want none and the first hit's", a.Batches()-batches, last())
		}
		touch(a, 5, 31*time.Second, false)
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		if last() != msAt(31*time.Second) {
			t.Fatalf("last %s after a hit past the slack, want %s", last(), msAt(31*time.Second))
		}
		touch(a, 5, 60*time.Second, false)
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		if last() != msAt(31*time.Second) {
			t.Fatalf("last %s, want %s: the hit was within the slack of the one written", last(), msAt(31*time.Second))
		}
		// The visit goes on on the other instance, the lag within the
		// slack: one session.
		if got := touch(b, 5, 31*time.Second+timeout-time.Second, true); got.ID != s.ID || got.Entry {
			t.Fatalf("the other instance: %+v, want session %d without entry", got, s.ID)
		}
	})

	t.Run("Close writes behind", func(t *testing.T) {
		c := newStore()
		touch(c, 4, 0, true)
		touch(c, 4, 10*time.Minute, false)
		c.Close()
		want := strconv.FormatInt(t0.Add(10*time.Minute).UnixMilli(), 10)
		if got := rdb.HGet(ctx, prefix+"sess:site1:4", "last").Val(); got != want {
			t.Fatalf("last = %s after Close, want %s", got, want)
		}
	})
}
