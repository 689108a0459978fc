package identity_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// deferStores returns a store that defers lookups and one that does not,
// sharing a fresh prefix, and the stream key WriteEntry writes to.
func deferStores(t *testing.T) (r, other *identity.RedisSessions, rdb *redis.Client, stream string) {
	t.Helper()
	rdb = testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	r = identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{Timeout: redisTimeout, Defer: true, Logger: discard})
	other = identity.NewRedisSessions(rdb, prefix, identity.RedisOptions{Timeout: redisTimeout, Logger: discard})
	t.Cleanup(func() { r.Close(); other.Close() })
	return r, other, rdb, prefix + "events"
}

// writeEntry writes one entry with the hits' lookups and returns its
// recorded sessions, the SessionsField value ("" when absent).
func writeEntry(t *testing.T, rdb *redis.Client, stream string, hits ...identity.DeferredAt) string {
	t.Helper()
	ctx := context.Background()
	id, err := identity.WriteEntry(ctx, rdb, stream, "b", "payload", hits)
	if err != nil {
		t.Fatal(err)
	}
	e, err := rdb.XRange(ctx, stream, id, id).Result()
	if err != nil || len(e) != 1 {
		t.Fatalf("entry %s: %v %v", id, e, err)
	}
	if e[0].Values["b"] != "payload" {
		t.Fatalf("entry value %v", e[0].Values)
	}
	s, _ := e[0].Values[identity.SessionsField].(string)
	return s
}

func TestDeferWhichHits(t *testing.T) {
	r, _, _, _ := deferStores(t)
	pageview := identity.Hit{Site: "site1", Visitor: 1, Time: t0, Timeout: timeout, Pageview: true, Create: true}

	s, ok, d := r.Defer(pageview)
	if !ok || d == nil {
		t.Fatalf("a new visit's pageview: %+v %v %v, want it deferred", s, ok, d)
	}
	want := identity.Session{ID: identity.SessionID(1, t0), Visitor: 1, Start: t0, Entry: true}
	same := func(a, b identity.Session) bool {
		return a.ID == b.ID && a.Visitor == b.Visitor && a.Start.Equal(b.Start) && a.Entry == b.Entry
	}
	if !same(s, want) || !same(d.Session(), want) {
		t.Fatalf("guess %+v / %+v, want a new session %+v", s, d.Session(), want)
	}

	// A ping may not start a session: it asks Redis at once, as Touch.
	batches := r.Batches()
	if _, ok, d := r.Defer(identity.Hit{Site: "site1", Visitor: 2, Time: t0, Timeout: timeout}); ok || d != nil {
		t.Fatalf("a ping without a session: ok %v, deferred %v", ok, d)
	}
	if r.Batches() != batches+1 {
		t.Fatal("the ping did not ask Redis")
	}

	// Without the option Defer is Touch.
	_, other, _, _ := deferStores(t)
	if s, ok, d := other.Defer(pageview); !ok || d != nil || s.ID != want.ID {
		t.Fatalf("without Defer: %+v %v %v", s, ok, d)
	}
}

func TestWriteEntry(t *testing.T) {
	r, other, rdb, stream := deferStores(t)
	hit := func(visitor uint64, at time.Duration, pageview bool) identity.Hit {
		return identity.Hit{Site: "site1", Visitor: visitor, Time: t0.Add(at), Timeout: timeout, Pageview: pageview, Create: true}
	}

	t.Run("new visit", func(t *testing.T) {
		guess, _, d := r.Defer(hit(10, 0, true))
		recorded := writeEntry(t, rdb, stream, identity.DeferredAt{Index: 3, Hit: d})
		want := "3:10:" + strconv.FormatUint(guess.ID, 10) + ":1"
		if recorded != want {
			t.Fatalf("recorded %q, want %q", recorded, want)
		}
		ev := event.Event{Pending: d}
		d.Finish(&ev)
		if ev.SessionID != guess.ID || ev.VisitorID != 10 || !ev.Entry || ev.Pending != nil {
			t.Fatalf("finished event %+v, want the new session", ev)
		}
		// Redis holds it, and memory too: the visit's next hits do not wait.
		if got := rdb.HGet(context.Background(), strings.TrimSuffix(stream, "events")+"sess:site1:10", "id").Val(); got != strconv.FormatUint(guess.ID, 10) {
			t.Fatalf("Redis holds session %q", got)
		}
		local := r.Local()
		if s, _, d := r.Defer(hit(10, time.Minute, false)); d != nil || s.ID != guess.ID || r.Local() != local+1 {
			t.Fatalf("the next hit: %+v deferred %v, want it answered from memory", s, d)
		}
	})

	t.Run("session started elsewhere", func(t *testing.T) {
		started, _ := other.Touch(hit(11, 0, true))
		guess, _, d := r.Defer(hit(11, time.Second, true))
		if guess.ID == started.ID || !guess.Entry {
			t.Fatalf("guess %+v: r cannot know the other instance's session", guess)
		}
		recorded := writeEntry(t, rdb, stream, identity.DeferredAt{Index: 0, Hit: d})
		if want := "0:11:" + strconv.FormatUint(started.ID, 10) + ":0"; recorded != want {
			t.Fatalf("recorded %q, want %q", recorded, want)
		}
		ev := event.Event{SessionID: guess.ID, Entry: true, Pending: d}
		d.Finish(&ev)
		if ev.SessionID != started.ID || ev.Entry {
			t.Fatalf("finished %+v, want session %d, not its entry", ev, started.ID)
		}
	})

	t.Run("yesterday's session", func(t *testing.T) {
		started, _ := other.Touch(hit(12, 0, true))
		h := hit(13, time.Minute, true)
		h.Previous = 12
		_, _, d := r.Defer(h)
		recorded := writeEntry(t, rdb, stream, identity.DeferredAt{Index: 1, Hit: d})
		if want := "1:12:" + strconv.FormatUint(started.ID, 10) + ":0"; recorded != want {
			t.Fatalf("recorded %q, want %q: the session runs under yesterday's id", recorded, want)
		}
		var ev event.Event
		d.Finish(&ev)
		if ev.VisitorID != 12 || ev.SessionID != started.ID {
			t.Fatalf("finished %+v", ev)
		}
	})

	t.Run("in order, one visit twice", func(t *testing.T) {
		_, _, d1 := r.Defer(hit(14, 0, false)) // an event: a session without entry
		_, _, d2 := r.Defer(hit(14, time.Second, true))
		recorded := writeEntry(t, rdb, stream,
			identity.DeferredAt{Index: 0, Hit: d1}, identity.DeferredAt{Index: 1, Hit: d2})
		id := strconv.FormatUint(identity.SessionID(14, t0), 10)
		if want := "0:14:" + id + ":0;1:14:" + id + ":1"; recorded != want {
			t.Fatalf("recorded %q, want %q: one session, the pageview its entry", recorded, want)
		}
	})

	t.Run("no session recorded for a failed hit", func(t *testing.T) {
		key := strings.TrimSuffix(stream, "events") + "sess:site1:15"
		rdb.Set(context.Background(), key, "not a hash", time.Minute)
		guess, _, d := r.Defer(hit(15, 0, true))
		if recorded := writeEntry(t, rdb, stream, identity.DeferredAt{Index: 0, Hit: d}); recorded != "" {
			t.Fatalf("recorded %q for a hit whose key is a string", recorded)
		}
		fallbacks := r.Fallbacks()
		var ev event.Event
		d.Finish(&ev)
		if ev.SessionID != guess.ID || r.Fallbacks() != fallbacks+1 {
			t.Fatalf("finished %+v (fallbacks %d → %d), want the guess from memory", ev, fallbacks, r.Fallbacks())
		}
	})
}

func TestWriteEntryFails(t *testing.T) {
	r, _, rdb, stream := deferStores(t)
	rdb.Set(context.Background(), stream, "not a stream", time.Minute)
	guess, _, d := r.Defer(identity.Hit{Site: "site1", Visitor: 20, Time: t0, Timeout: timeout, Pageview: true, Create: true})
	if _, err := identity.WriteEntry(context.Background(), rdb, stream, "b", "x", []identity.DeferredAt{{Hit: d}}); err == nil {
		t.Fatal("no error writing to a string key")
	}
	// The event went elsewhere (the spool) with its guess: it keeps it,
	// and memory resolves the hit so the visit goes on.
	var ev event.Event
	d.Finish(&ev)
	if ev.SessionID != guess.ID || !ev.Entry {
		t.Fatalf("finished %+v, want the guess %+v", ev, guess)
	}
	local := r.Local()
	if s, _, d := r.Defer(identity.Hit{Site: "site1", Visitor: 20, Time: t0.Add(time.Second), Timeout: timeout}); d != nil || s.ID != guess.ID || r.Local() != local+1 {
		t.Fatalf("the visit's next hit: %+v, want it continued in memory", s)
	}
}

// TestDeferredLateAnswer finishes a hit before the queue's write answers,
// as when Enqueue timed out: the event keeps its guess, and the late
// answer still updates memory.
func TestDeferredLateAnswer(t *testing.T) {
	r, other, rdb, stream := deferStores(t)
	started, _ := other.Touch(identity.Hit{Site: "site1", Visitor: 30, Time: t0, Timeout: timeout, Pageview: true, Create: true})
	guess, _, d := r.Defer(identity.Hit{Site: "site1", Visitor: 30, Time: t0.Add(time.Second), Timeout: timeout, Pageview: true, Create: true})

	var ev event.Event
	d.Finish(&ev)
	if ev.SessionID != guess.ID {
		t.Fatalf("finished %+v, want the guess", ev)
	}
	writeEntry(t, rdb, stream, identity.DeferredAt{Hit: d})
	if s, _ := r.Touch(identity.Hit{Site: "site1", Visitor: 30, Time: t0.Add(2 * time.Second), Timeout: timeout}); s.ID != started.ID {
		t.Fatalf("after the late answer memory has session %d, want Redis's %d", s.ID, started.ID)
	}
}

func TestEntrySessions(t *testing.T) {
	type rec struct {
		i                int
		visitor, session uint64
		entry            bool
	}
	for _, tc := range []struct {
		in   string
		n    int
		want []rec
	}{
		{"0:1:2:1", 1, []rec{{0, 1, 2, true}}},
		{"4:10:20:0;1:11:21:1", 5, []rec{{4, 10, 20, false}, {1, 11, 21, true}}},
		{"0:9223372036854775807:1:0", 1, []rec{{0, 1<<63 - 1, 1, false}}},
		{"", 1, nil},
		{"1:1:2:1", 1, nil},                     // index past the entry
		{"-1:1:2:1", 3, nil},                    // negative index
		{"0:1:2:2", 1, nil},                     // entry flag
		{"0:1:2", 1, nil},                       // missing field
		{"0:1:2:1;", 1, nil},                    // trailing separator
		{"0:9223372036854775808:1:0", 1, nil},   // id beyond 63 bits
		{"0:x:1:0", 1, nil},                     // not a number
		{"0:1:2:1;0:1:2:1:extra", 1, nil},       // one bad record fails all
		{"00:1:2:1", 1, []rec{{0, 1, 2, true}}}, // leading zeros are numbers
	} {
		var got []rec
		recorded, ok := identity.EntrySessions(nil, tc.in, tc.n)
		for _, r := range recorded {
			got = append(got, rec{r.Index, r.Visitor, r.Session, r.Entry})
		}
		if ok != (tc.want != nil) || len(got) != len(tc.want) {
			t.Errorf("%q: ok %v, %v; want %v", tc.in, ok, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

// FuzzEntrySessions checks that any field value is either refused or gives
// records within the entry and 63-bit ids, appending none for a value it
// refuses.
func FuzzEntrySessions(f *testing.F) {
	for _, s := range []string{"0:1:2:1", "4:10:20:0;1:11:21:1", "", ";", "0:1:2", "1:1:1:1:1"} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, v string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		recorded, ok := identity.EntrySessions(nil, v, n)
		calls := len(recorded)
		for _, r := range recorded {
			if r.Index < 0 || r.Index >= n || r.Visitor >= 1<<63 || r.Session >= 1<<63 {
				t.Fatalf("%q: record %d %d %d outside the bounds", v, r.Index, r.Visitor, r.Session)
			}
		}
		if !ok && calls > 0 {
			t.Fatalf("%q refused after %d records", v, calls)
		}
		if ok && calls != strings.Count(v, ";")+1 {
			t.Fatalf("%q: %d records", v, calls)
		}
	})
}
