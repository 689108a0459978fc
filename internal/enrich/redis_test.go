package enrich

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/session"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// instance is one app instance: a pipeline with salts and sessions in the
// Redis that all instances share.
type instance struct {
	p        *Pipeline
	ring     *salt.Ring
	sessions *session.Redis
}

func newInstance(t *testing.T, rdb *redis.Client, prefix string) *instance {
	t.Helper()
	ring := salt.NewRing(salt.NewRedisStore(rdb, prefix))
	if err := ring.Rotate(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	sessions := session.NewRedis(rdb, prefix, session.RedisOptions{
		// Not the 50ms default: the test server is shared with parallel
		// packages and may stall. A cut connection fails at once anyway.
		Timeout: 5 * time.Second,
		Logger:  discard,
	})
	t.Cleanup(func() { sessions.Close() })
	return &instance{p: newPipeline(t, Config{Salts: ring, Sessions: sessions}), ring: ring, sessions: sessions}
}

// run enriches a hit of typ at at from a browser with User-Agent ua.
func (in *instance) run(t *testing.T, ua, typ string, at time.Time) (event.Event, string) {
	t.Helper()
	if err := in.ring.Rotate(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	h := hit.Body{Type: typ, URL: "https://example.com/page"}
	if typ == event.Custom {
		h.Name = "signup"
	}
	i := input(ua, h)
	i.Now = at
	return in.p.Run(context.Background(), i)
}

// TestRedisSessionsAcrossInstances sends one browser's hits alternately to
// two instances, as a load balancer without sticky sessions does.
func TestRedisSessionsAcrossInstances(t *testing.T) {
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	a := newInstance(t, testutil.Redis(t), prefix)
	b := newInstance(t, testutil.Redis(t), prefix)

	type step struct {
		via     *instance
		typ     string
		at      time.Duration // since t0
		newSess bool          // starts a session (and so is its entry if a pageview)
	}
	evening := time.Date(2025, 3, 10, 23, 50, 0, 0, time.UTC) // t0's day
	cases := []struct {
		name  string
		start time.Time
		steps []step
	}{
		{"one visit", t0, []step{
			{a, event.Pageview, 0, true},
			{b, event.Ping, 20 * time.Second, false},
			{b, event.Pageview, time.Minute, false},
			{a, event.Custom, 2 * time.Minute, false},
			{a, event.Ping, 3 * time.Minute, false},
			{b, event.Leave, 4 * time.Minute, false},
			{a, event.Pageview, 33 * time.Minute, false}, // 29 minutes idle
		}},
		{"a new session after 30 idle minutes", t0.Add(2 * time.Hour), []step{
			{b, event.Pageview, 0, true},
			{a, event.Pageview, 30 * time.Minute, true},
			{b, event.Ping, 31 * time.Minute, false},
		}},
		{"a visit across midnight", evening, []step{
			{a, event.Pageview, 0, true},
			{b, event.Pageview, 15 * time.Minute, false}, // 00:05, today's salt
			{a, event.Ping, 20 * time.Minute, false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var first event.Event
			for i, st := range c.steps {
				ev, drop := st.via.run(t, uaFirefoxLinux, st.typ, c.start.Add(st.at))
				if drop != "" {
					t.Fatalf("step %d (%s): dropped: %s", i, st.typ, drop)
				}
				if st.newSess {
					if ev.SessionID == first.SessionID {
						t.Fatalf("step %d: session %d goes on, want a new one", i, ev.SessionID)
					}
					first = ev
				} else if ev.SessionID != first.SessionID || ev.VisitorID != first.VisitorID {
					t.Fatalf("step %d (%s): visitor %d session %d, want visitor %d session %d",
						i, st.typ, ev.VisitorID, ev.SessionID, first.VisitorID, first.SessionID)
				}
				if want := st.newSess && st.typ == event.Pageview; ev.Entry != want {
					t.Fatalf("step %d (%s): entry = %v, want %v", i, st.typ, ev.Entry, want)
				}
			}
		})
	}
	for _, in := range []*instance{a, b} {
		if n := in.sessions.Fallbacks(); n != 0 {
			t.Errorf("%d hits fell back to memory", n)
		}
	}
}

// TestRedisSessionsDown cuts instance a off Redis: its hits are still
// enriched, a visit it has seen goes on in its memory, and a visit it starts
// meanwhile reaches the other instance with its next hit once Redis answers
// again.
func TestRedisSessionsDown(t *testing.T) {
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, opts.Addr)
	opts.Addr = proxy.Addr
	viaProxy := redis.NewClient(opts)
	t.Cleanup(func() { viaProxy.Close() })

	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	a := newInstance(t, viaProxy, prefix)
	b := newInstance(t, testutil.Redis(t), prefix)

	at := t0
	run := func(in *instance, ua, typ string) event.Event {
		t.Helper()
		at = at.Add(time.Second)
		ev, drop := in.run(t, ua, typ, at)
		if drop != "" {
			t.Fatalf("%s: dropped: %s", typ, drop)
		}
		if ev.Country != "GB" || ev.Browser == "" || ev.VisitorID == 0 || ev.SessionID == 0 {
			t.Fatalf("%s not enriched: %+v", typ, ev)
		}
		return ev
	}
	visit := run(b, uaFirefoxLinux, event.Pageview)
	run(a, uaFirefoxLinux, event.Ping) // a sees the visit

	proxy.Cut()
	for _, typ := range []string{event.Pageview, event.Ping, event.Custom} {
		if ev := run(a, uaFirefoxLinux, typ); ev.SessionID != visit.SessionID || ev.Entry {
			t.Fatalf("%s during the outage: session %d entry %v, want session %d", typ, ev.SessionID, ev.Entry, visit.SessionID)
		}
	}
	started := run(a, uaEdge, event.Pageview)
	if started.SessionID == visit.SessionID || !started.Entry {
		t.Fatalf("a new visit during the outage: %+v", started)
	}
	// Only the new visit needed Redis: the known one's session was
	// confirmed by Redis seconds before.
	if n := a.sessions.Fallbacks(); n != 1 {
		t.Fatalf("%d fallbacks, want 1", n)
	}

	// Once Redis answers again (a probes it every 250 ms), the new visit's
	// next hit writes its session there.
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := a.sessions.Fallbacks()
		if ev := run(a, uaEdge, event.Ping); ev.SessionID != started.SessionID {
			t.Fatalf("after the outage: session %d, want %d", ev.SessionID, started.SessionID)
		}
		if a.sessions.Fallbacks() == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis still not tried 10s after it came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		ua   string
		want uint64
	}{{uaFirefoxLinux, visit.SessionID}, {uaEdge, started.SessionID}} {
		if ev := run(b, c.ua, event.Ping); ev.SessionID != c.want {
			t.Fatalf("b after the outage: session %d, want %d", ev.SessionID, c.want)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
