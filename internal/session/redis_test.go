package session_test

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

	"github.com/pocketlytics/pocketlytics/internal/session"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

func TestRedisKey(t *testing.T) {
	rdb := testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	r := session.NewRedis(rdb, prefix, session.RedisOptions{Timeout: redisTimeout})
	t.Cleanup(func() { r.Close() })

	ctx := context.Background()
	s, ok := r.Touch(ctx, session.Lookup{Site: "site1", Visitor: 42, Time: t0, Pageview: true, Create: true})
	if !ok {
		t.Fatal("not created")
	}
	key := prefix + "sess:site1:42"
	ms := strconv.FormatInt(t0.UnixMilli(), 10)
	want := map[string]string{"id": strconv.FormatUint(s.ID, 10), "start": ms, "last": ms, "entered": "1"}
	got := rdb.HGetAll(ctx, key).Val()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (hash %v)", k, got[k], v, got)
		}
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= session.Timeout-time.Minute || ttl > session.Timeout {
		t.Errorf("PTTL = %v, want about %v", ttl, session.Timeout)
	}
	// A ping ten seconds later goes on from memory: Redis answered for the
	// session just before, and a ping cannot change it.
	if s2, ok := r.Touch(ctx, session.Lookup{Site: "site1", Visitor: 42, Time: t0.Add(10 * time.Second)}); !ok || s2.ID != s.ID {
		t.Fatalf("the first ping: %+v %v, want session %d", s2, ok, s.ID)
	}
	if last := rdb.HGet(ctx, key, "last").Val(); last != ms {
		t.Errorf("last after a ping answered from memory = %s, want the pageview's time", last)
	}
	// A ping five minutes later renews the key for a full timeout from then.
	if s2, ok := r.Touch(ctx, session.Lookup{Site: "site1", Visitor: 42, Time: t0.Add(5 * time.Minute)}); !ok || s2.ID != s.ID {
		t.Fatalf("the ping: %+v %v, want session %d", s2, ok, s.ID)
	}
	if last := rdb.HGet(ctx, key, "last").Val(); last != strconv.FormatInt(t0.Add(5*time.Minute).UnixMilli(), 10) {
		t.Errorf("last after the ping = %s, want the ping's time", last)
	}
}

// TestRedisShared runs one visit's hits concurrently through two stores, as
// two instances behind a load balancer would.
func TestRedisShared(t *testing.T) {
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	instances := []*session.Redis{
		session.NewRedis(testutil.Redis(t), prefix, session.RedisOptions{Timeout: redisTimeout}),
		session.NewRedis(testutil.Redis(t), prefix, session.RedisOptions{Timeout: redisTimeout}),
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
				s, ok := r.Touch(context.Background(), session.Lookup{Site: "site1", Visitor: 7, Time: t0.Add(time.Duration(i) * time.Second), Pageview: true, Create: true})
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

// TestRedisOutage cuts one instance off Redis: its hits are resolved in
// memory, visits it has seen go on, the outage is logged once, and a
// session it started meanwhile reaches Redis with the visit's next hit once
// Redis answers again.
func TestRedisOutage(t *testing.T) {
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, opts.Addr)
	opts.Addr = proxy.Addr
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	var logs syncBuffer
	r := session.NewRedis(rdb, prefix, session.RedisOptions{
		Timeout: redisTimeout, // a cut connection fails at once
		Logger:  func() *slog.Logger { return slog.New(slog.NewTextHandler(&logs, nil)) },
	})
	other := session.NewRedis(testutil.Redis(t), prefix, session.RedisOptions{Timeout: redisTimeout, Logger: discard})
	t.Cleanup(func() { r.Close(); other.Close() })

	at := t0
	hit := func(store session.Store, visitor uint64, pageview bool) session.Session {
		t.Helper()
		at = at.Add(time.Second)
		s, ok := store.Touch(context.Background(), session.Lookup{Site: "site1", Visitor: visitor, Time: at, Pageview: pageview, Create: pageview})
		if !ok {
			t.Fatalf("visitor %d: no session", visitor)
		}
		return s
	}
	before := hit(r, 1, true)

	proxy.Cut()
	if s := hit(r, 1, false); s.ID != before.ID {
		t.Fatalf("a visit seen before the outage: session %d, want %d", s.ID, before.ID)
	}
	during := hit(r, 2, true)
	if !during.Entry {
		t.Fatal("a new visit during the outage has no entry")
	}
	for range 20 {
		if s := hit(r, 2, false); s.ID != during.ID {
			t.Fatalf("a ping during the outage: session %d, want %d", s.ID, during.ID)
		}
	}
	// The first hit went on from memory: Redis had answered for its
	// session a second before. The new visit's 21 hits fell back.
	if n := r.Fallbacks(); n != 21 {
		t.Fatalf("%d fallbacks, want the new visit's 21 hits", n)
	}
	if n := strings.Count(logs.String(), "unavailable"); n != 1 {
		t.Fatalf("outage logged %d times:\n%s", n, logs.String())
	}
	if s := hit(other, 1, false); s.ID != before.ID {
		t.Fatalf("another instance: session %d, want %d", s.ID, before.ID)
	}

	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for n := r.Fallbacks(); ; n = r.Fallbacks() {
		if s := hit(r, 2, false); s.ID != during.ID {
			t.Fatalf("after the outage: session %d, want %d", s.ID, during.ID)
		}
		if r.Fallbacks() == n {
			break // Redis answered
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis still not tried 10s after it came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The session started in memory is now in Redis for every instance.
	if s := hit(other, 2, false); s.ID != during.ID {
		t.Fatalf("another instance after the outage: session %d, want %d", s.ID, during.ID)
	}
	if !strings.Contains(logs.String(), "available again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// TestRedisFailuresInARow fails the hits of visitors whose keys hold
// something else: each goes to memory, but Redis counts as down only after
// failures in a row.
func TestRedisFailuresInARow(t *testing.T) {
	rdb := testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	var logs syncBuffer
	r := session.NewRedis(rdb, prefix, session.RedisOptions{
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
		if _, ok := r.Touch(context.Background(), session.Lookup{Site: "site1", Visitor: visitor, Time: at, Pageview: true, Create: true}); !ok {
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
		t.Fatalf("logged before 3 failures in a row:\n%s", logs.String())
	}
	bad()
	bad()
	bad()
	if !strings.Contains(logs.String(), "WRONGTYPE") {
		t.Fatalf("3 failures in a row not logged:\n%s", logs.String())
	}
}

// TestRedisSlow points the store at a server that accepts connections and
// never answers: the hit is resolved in memory after the store's timeout,
// not after the client's one-minute read timeout.
func TestRedisSlow(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testutil.SilentServer(t), ReadTimeout: time.Minute, WriteTimeout: time.Minute, DialTimeout: time.Minute})
	t.Cleanup(func() { rdb.Close() })
	r := session.NewRedis(rdb, "pl_test:", session.RedisOptions{Timeout: 50 * time.Millisecond, Logger: discard})
	t.Cleanup(func() { r.Close() })

	done := make(chan bool)
	go func() {
		_, ok := r.Touch(context.Background(), session.Lookup{Site: "site1", Visitor: 1, Time: t0, Pageview: true, Create: true})
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

// BenchmarkRedisTouch is one hit's round trip: a new visit every other hit.
func BenchmarkRedisTouch(b *testing.B) {
	r := session.NewRedis(testutil.Redis(b), testutil.RedisPrefix(b, "pl_bench_")+":", session.RedisOptions{Logger: discard})
	b.Cleanup(func() { r.Close() })
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		r.Touch(context.Background(), session.Lookup{Site: "site1", Visitor: i/2 + 1, Previous: i/2 + 1<<40, Time: t0, Pageview: true, Create: true})
	}
	b.ReportMetric(float64(r.Fallbacks()), "fallbacks")
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

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
