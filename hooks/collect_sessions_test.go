package hooks_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tests"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/enrich"
	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// instance is the ingest route of one app instance on a shared Redis.
type instance struct {
	mux      http.Handler
	queue    *redisq.Queue
	sessions *identity.RedisSessions
	live     *liveEvents
}

// liveEvents is a LivePublisher that keeps what it was told.
type liveEvents struct {
	mu  sync.Mutex
	evs []event.Event
}

func (l *liveEvents) Publish(ev event.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *liveEvents) last(t *testing.T) event.Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.evs) == 0 {
		t.Fatal("nothing published")
	}
	return l.evs[len(l.evs)-1]
}

// newInstance starts an ingest route whose sessions and queue are on rdb
// under prefix, hashing visitors with ring as every instance does.
func newInstance(t *testing.T, rdb *redis.Client, prefix string, ring *salt.Ring, deferLookups bool) *instance {
	t.Helper()
	app, err := tests.NewTestApp(template(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	in := &instance{live: &liveEvents{}}
	in.sessions = identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{Timeout: 5 * time.Second, Defer: deferLookups})
	t.Cleanup(func() { in.sessions.Close() })
	pipeline, err := enrich.New(enrich.Config{Salts: ring, Sessions: in.sessions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pipeline.Close() })
	if in.queue, err = redisq.New(rdb, redisq.Options{Stream: prefix + "events"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.queue.Close() })
	err = hooks.RegisterCollect(app, hooks.CollectConfig{
		Sites: sitecache.Register(app), Enricher: pipeline, Queue: in.queue, Live: in.live,
	})
	if err != nil {
		t.Fatal(err)
	}
	in.mux = serveMux(t, app)
	return in
}

// TestCollectSessionWithTheWrite: with sessions in Redis, the session of a
// hit whose visit this instance has not seen is looked up in the script
// call that queues the hit. The live layer and the store get the session
// Redis decided on, here one another instance started, not the new one
// the event was queued with until Redis answered.
func TestCollectSessionWithTheWrite(t *testing.T) {
	rdb := testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	ring := salt.NewRing(nil)
	if err := ring.Rotate(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	other := newInstance(t, rdb, prefix, ring, false)
	mine := newInstance(t, rdb, prefix, ring, true)

	if rec := post(other.mux, pageview(siteID, "https://example.com/"), chromeUA); rec.Code != http.StatusAccepted {
		t.Fatalf("other instance: status %d", rec.Code)
	}
	first := other.live.last(t)
	if !first.Entry {
		t.Fatal("the visit's first pageview is not its entry")
	}

	if rec := post(mine.mux, pageview(siteID, "https://example.com/pricing"), chromeUA); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	published := mine.live.last(t)
	if published.SessionID != first.SessionID || published.VisitorID != first.VisitorID || published.Entry || published.Pending != nil {
		t.Fatalf("published visitor %d session %d entry %v, want the other instance's visit %d/%d, not an entry",
			published.VisitorID, published.SessionID, published.Entry, first.VisitorID, first.SessionID)
	}
	entries := rdb.XRevRangeN(context.Background(), prefix+"events", "+", "-", 1).Val()
	if len(entries) != 1 || entries[0].Values[identity.SessionsField] == nil || mine.sessions.Fallbacks() != 0 {
		t.Fatalf("last entry %v (fallbacks %d), want the session looked up in the queue's write", entries, mine.sessions.Fallbacks())
	}

	// A new visit: its own session, its entry, published as stored.
	if rec := post(mine.mux, pageview(siteID, "https://example.com/docs"), strings.Replace(chromeUA, "131.0", "130.0", 1)); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	fresh := mine.live.last(t)
	if !fresh.Entry || fresh.SessionID == first.SessionID {
		t.Fatalf("a new visit published as %+v", fresh)
	}

	stored := map[string]event.Event{}
	for len(stored) < 3 {
		msgs, err := mine.queue.Read(context.Background(), 10, time.Second)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("read %d events (%v), want 3", len(stored), err)
		}
		for _, m := range msgs {
			stored[m.Event.Pathname] = m.Event
		}
	}
	for _, want := range []event.Event{first, published, fresh} {
		got := stored[want.Pathname]
		if got.SessionID != want.SessionID || got.VisitorID != want.VisitorID || got.Entry != want.Entry {
			t.Errorf("%s stored as %d/%d/%v, published as %d/%d/%v", want.Pathname,
				got.VisitorID, got.SessionID, got.Entry, want.VisitorID, want.SessionID, want.Entry)
		}
	}
}
