package redisq

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

var sessionsT0 = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// sessionStores returns a store whose lookups ride along with the queue's
// writes and another instance's store on the same keys.
func sessionStores(t *testing.T, c *redis.Client) (deferring, other *identity.RedisSessions) {
	t.Helper()
	prefix := testutil.RedisPrefix(t, "pl:test:") + ":"
	deferring = identity.NewRedisSessions(c, prefix, identity.RedisOptions{Timeout: 5 * time.Second, Defer: true})
	other = identity.NewRedisSessions(c, prefix, identity.RedisOptions{Timeout: 5 * time.Second})
	t.Cleanup(func() { deferring.Close(); other.Close() })
	return deferring, other
}

func sessionHit(visitor uint64, at time.Duration) identity.Hit {
	return identity.Hit{Site: "site1", Visitor: visitor, Time: sessionsT0.Add(at), Timeout: 30 * time.Minute, Pageview: true, Create: true}
}

// deferredEvent returns event i with the guess of a deferred lookup for
// visitor, as the ingest route queues it.
func deferredEvent(t *testing.T, r *identity.RedisSessions, i int, visitor uint64) event.Event {
	t.Helper()
	s, ok, d := r.Defer(sessionHit(visitor, time.Second))
	if !ok || d == nil {
		t.Fatalf("visitor %d: not deferred", visitor)
	}
	ev := testEvent(i)
	ev.VisitorID, ev.SessionID, ev.Entry, ev.Pending = s.Visitor, s.ID, s.Entry, d
	return ev
}

// TestSessionLookupsInEntries queues events whose session lookups ride
// along, in entries of MaxBatch events: each entry records the sessions of
// its own events, and the flusher reads what Redis decided, as the caller's
// Finish does, also where another instance had started the session.
func TestSessionLookupsInEntries(t *testing.T) {
	ctx := context.Background()
	c := testClient(t)
	opts := testOptions(t, c)
	opts.MaxBatch = 3
	q := newQueue(t, c, opts)
	r, other := sessionStores(t, c)

	started, _ := other.Touch(sessionHit(106, 0))
	evs := make([]event.Event, 7)
	for i := range evs {
		evs[i] = testEvent(i)
	}
	for _, i := range []int{1, 3, 5, 6} { // across three entries
		evs[i] = deferredEvent(t, r, i, 100+uint64(i))
	}
	if evs[6].SessionID == started.ID {
		t.Fatal("the guess already knows the other instance's session")
	}
	if err := q.Enqueue(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	want := make(map[string]event.Event)
	for i := range evs {
		if p := evs[i].Pending; p != nil {
			p.Finish(&evs[i])
		}
		want[evs[i].ID] = evs[i]
	}
	if w := want[evs[6].ID]; w.SessionID != started.ID || w.Entry || w.VisitorID != 106 {
		t.Fatalf("finished %+v, want the other instance's session %d", w, started.ID)
	}

	entries := c.XRange(ctx, opts.Stream, "-", "+").Val()
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	for i, wantIdx := range [][]string{{"1"}, {"0", "2"}, {"0"}} { // events 1; 3 and 5; 6
		got, _ := entries[i].Values[identity.SessionsField].(string)
		var idx []string
		for rec := range strings.SplitSeq(got, ";") {
			idx = append(idx, strings.SplitN(rec, ":", 2)[0])
		}
		if strings.Join(idx, ",") != strings.Join(wantIdx, ",") {
			t.Errorf("entry %d records %q, want events %v of it", i, got, wantIdx)
		}
	}
	for _, m := range readAll(t, q, len(evs)) {
		w := want[m.Event.ID]
		if m.Event.VisitorID != w.VisitorID || m.Event.SessionID != w.SessionID || m.Event.Entry != w.Entry {
			t.Errorf("event %s read with %d/%d/%v, want %d/%d/%v", m.Event.Pathname,
				m.Event.VisitorID, m.Event.SessionID, m.Event.Entry, w.VisitorID, w.SessionID, w.Entry)
		}
	}

	// EntryEvents reads the same.
	got, err := EntryEvents(entries[2])
	if err != nil || len(got) != 1 || got[0].SessionID != started.ID {
		t.Fatalf("EntryEvents = %+v, %v; want session %d", got, err, started.ID)
	}
}

// TestSessionLookupsConcurrent queues single events from many goroutines,
// as the ingest route does, so that group commits share entries: every
// event is read with the session its caller finished with, and one visit
// whose first hits race gets one session.
func TestSessionLookupsConcurrent(t *testing.T) {
	ctx := context.Background()
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	r, other := sessionStores(t, c)
	for v := uint64(0); v < 10; v += 3 {
		other.Touch(sessionHit(200+v, 0))
	}

	const n = 60
	finished := make([]event.Event, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Three pageviews a visitor: those that come once the visit's
			// session is in memory are not deferred.
			s, _, d := r.Defer(sessionHit(200+uint64(i%20), time.Second))
			ev := testEvent(i)
			ev.VisitorID, ev.SessionID, ev.Entry = s.Visitor, s.ID, s.Entry
			if d != nil {
				ev.Pending = d
			}
			if err := q.Enqueue(ctx, ev); err != nil {
				t.Error(err)
			}
			if ev.Pending != nil {
				ev.Pending.Finish(&ev)
			}
			finished[i] = ev
		})
	}
	wg.Wait()

	byID := make(map[string]event.Event, n)
	sessions := make(map[uint64]uint64)
	entries := make(map[uint64]int)
	for _, ev := range finished {
		byID[ev.ID] = ev
		if s, ok := sessions[ev.VisitorID]; ok && s != ev.SessionID {
			t.Errorf("visitor %d in sessions %d and %d", ev.VisitorID, s, ev.SessionID)
		}
		sessions[ev.VisitorID] = ev.SessionID
		if ev.Entry {
			entries[ev.VisitorID]++
		}
	}
	for v := uint64(200); v < 220; v++ {
		want := 1
		if (v-200)%3 == 0 && v < 210 {
			want = 0 // the other instance's pageview was the entry
		}
		if entries[v] != want {
			t.Errorf("visitor %d: %d entries, want %d", v, entries[v], want)
		}
	}
	for _, m := range readAll(t, q, n) {
		w := byID[m.Event.ID]
		if m.Event.SessionID != w.SessionID || m.Event.VisitorID != w.VisitorID {
			t.Errorf("event %s read in session %d, its caller finished with %d", m.Event.ID, m.Event.SessionID, w.SessionID)
		}
	}
}

// TestSessionLookupsNotInOlderFormats: the older formats cannot record a
// session, so the lookups stay with the caller, whose Finish resolves them
// in memory; the event keeps its guess.
func TestSessionLookupsNotInOlderFormats(t *testing.T) {
	c := testClient(t)
	opts := testOptions(t, c)
	opts.Format = FormatEvent
	q := newQueue(t, c, opts)
	r, _ := sessionStores(t, c)

	ev := deferredEvent(t, r, 0, 300)
	guess := ev.SessionID
	if err := q.Enqueue(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	fallbacks := r.Fallbacks()
	ev.Pending.Finish(&ev)
	if ev.SessionID != guess || r.Fallbacks() != fallbacks+1 {
		t.Fatalf("finished in session %d (fallbacks %d → %d), want the guess %d from memory", ev.SessionID, fallbacks, r.Fallbacks(), guess)
	}
	if m := readAll(t, q, 1); m[0].Event.SessionID != guess {
		t.Fatalf("read session %d, want %d", m[0].Event.SessionID, guess)
	}
}

// TestMalformedSessionsField: an entry whose recorded sessions do not parse
// goes to the dead-letter stream whole, like a malformed batch.
func TestMalformedSessionsField(t *testing.T) {
	ctx := context.Background()
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	a, b := testEvent(1), testEvent(2)
	good := c.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream,
		Values: []string{fieldBatch, frames(encoded(t, a)), identity.SessionsField, "0:7:8:1"}}).Val()
	for _, bad := range []string{"garbage", "1:7:8:1", "0:7:8:1;"} {
		c.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream,
			Values: []string{fieldBatch, frames(encoded(t, b)), identity.SessionsField, bad}})
	}

	msgs := readAll(t, q, 1)
	if msgs[0].ID != good || msgs[0].Event.VisitorID != 7 || msgs[0].Event.SessionID != 8 || !msgs[0].Event.Entry {
		t.Fatalf("read %+v, want event a in session 8", msgs[0])
	}
	if more, err := q.Read(ctx, 10, 10*time.Millisecond); err != nil || len(more) != 0 {
		t.Fatalf("Read = %v, %v; want nothing more", more, err)
	}
	dead := deadEntries(t, c, q)
	if len(dead) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dead))
	}
	for _, d := range dead {
		if cause, _ := d.Values["error"].(string); !strings.Contains(cause, strconv.Quote(identity.SessionsField)) {
			t.Errorf("dead letter's error %q does not name the field", cause)
		}
	}
}
