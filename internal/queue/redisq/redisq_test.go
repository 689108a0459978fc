package redisq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

func testClient(tb testing.TB) *redis.Client { return testutil.Redis(tb) }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testOptions returns options on a fresh stream, deleted when the test ends.
func testOptions(tb testing.TB, c *redis.Client) Options {
	tb.Helper()
	stream := testutil.RedisPrefix(tb, "pl:test:")
	return Options{Stream: stream, Consumer: "c1"}
}

func newQueue(tb testing.TB, c *redis.Client, opts Options) *Queue {
	tb.Helper()
	q, err := New(c, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { q.Close() })
	return q
}

func testEvent(i int) event.Event {
	return event.Event{
		ID:        randHex(16),
		Time:      time.UnixMilli(1_700_000_000_000 + int64(i)).UTC(),
		SiteID:    "site1",
		Type:      event.Pageview,
		Pathname:  fmt.Sprintf("/page/%d", i),
		Props:     map[string]string{"k": "v"},
		Country:   "DE",
		VisitorID: uint64(i) + 1,
		SessionID: uint64(i) + 2,
		Entry:     i%2 == 0,
	}
}

// readAll reads until n messages arrived or a deadline passed.
func readAll(t *testing.T, q *Queue, n int) []queue.Message {
	t.Helper()
	var out []queue.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		msgs, err := q.Read(context.Background(), n-len(out), 100*time.Millisecond)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		out = append(out, msgs...)
	}
	if len(out) != n {
		t.Fatalf("read %d messages, want %d", len(out), n)
	}
	return out
}

// claimQueue returns a client and a queue on a fresh stream whose idle
// entries are claimed after claimIdle, with maxDeliveries (0: the default).
func claimQueue(t *testing.T, claimIdle time.Duration, maxDeliveries int) (*redis.Client, *Queue) {
	t.Helper()
	c := testClient(t)
	opts := testOptions(t, c)
	opts.ClaimIdle = claimIdle
	opts.MaxDeliveries = maxDeliveries
	return c, newQueue(t, c, opts)
}

// wantAllAcked fails unless the stream holds nothing unacknowledged.
func wantAllAcked(t *testing.T, q *Queue) {
	t.Helper()
	if st := mustStats(t, q); st.Pending != 0 || st.Length != 0 {
		t.Fatalf("stats = %+v, want every entry acknowledged", st)
	}
}

func mustStats(t *testing.T, q *Queue) queue.Stats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func TestRoundTrip(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	want := []event.Event{testEvent(0), testEvent(1), testEvent(2)}
	if err := q.Enqueue(ctx, want[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, want[2]); err != nil {
		t.Fatal(err)
	}
	// Two group commits, two entries: Stats counts entries.
	if st := mustStats(t, q); st.Length != 2 || st.Pending != 0 || st.OldestPending <= 0 {
		t.Fatalf("stats before read = %+v, want length 2, pending 0, an oldest age", st)
	}

	msgs := readAll(t, q, 3)
	for i, m := range msgs {
		if m.Deliveries != 1 {
			t.Errorf("message %d: deliveries %d, want 1", i, m.Deliveries)
		}
		if !m.Event.Time.Equal(want[i].Time) || m.Event.ID != want[i].ID ||
			m.Event.Pathname != want[i].Pathname || m.Event.Props["k"] != "v" ||
			m.Event.VisitorID != want[i].VisitorID || m.Event.Entry != want[i].Entry {
			t.Errorf("message %d: event %+v, want %+v", i, m.Event, want[i])
		}
	}
	if st := mustStats(t, q); st.Length != 2 || st.Pending != 2 {
		t.Fatalf("stats after read = %+v, want length 2, pending 2", st)
	}

	if err := q.Ack(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, q); st.Length != 0 || st.Pending != 0 || st.OldestPending != 0 {
		t.Fatalf("stats after ack = %+v, want empty", st)
	}

	// Nothing left: an empty slice after the wait, not an error.
	msgs, err := q.Read(ctx, 10, 20*time.Millisecond)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Read on empty queue = %d messages, %v", len(msgs), err)
	}
}

// TestReadInChunks: a read of more than readChunk entries takes several
// XREADGROUPs and returns the entries in stream order, up to max.
func TestReadInChunks(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	const n = 2*readChunk + 500
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = testEvent(i)
		if err := q.Enqueue(ctx, evs[i]); err != nil { // an entry per event
			t.Fatal(err)
		}
	}
	cases := []struct {
		max, want int
	}{
		{readChunk, readChunk},             // exactly one chunk
		{readChunk + 200, readChunk + 200}, // a full chunk and a part
		{n, n - 2*readChunk - 200},         // the rest: the last chunk comes back short
		{n, 0},                             // nothing left
	}
	next := 0
	for _, tc := range cases {
		msgs, err := q.Read(ctx, tc.max, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != tc.want {
			t.Fatalf("Read(max %d) = %d messages, want %d", tc.max, len(msgs), tc.want)
		}
		for _, m := range msgs {
			if m.Event.ID != evs[next].ID {
				t.Fatalf("message %d: event %s, want %s (stream order)", next, m.Event.ID, evs[next].ID)
			}
			next++
		}
		if err := q.Ack(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	if st := mustStats(t, q); st.Length != 0 {
		t.Fatalf("length %d after reading and acknowledging everything", st.Length)
	}
}

// TestAckManyEntries acknowledges more entries than one XACK takes, of
// batch entries whose events straddle the chunks.
func TestAckManyEntries(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	const entries, per = 2*ackChunk + 50, 3
	for i := range entries {
		if err := q.Enqueue(ctx, testEvent(per*i), testEvent(per*i+1), testEvent(per*i+2)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := readAll(t, q, entries*per)
	if err := q.Ack(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, q); st.Pending != 0 {
		t.Fatalf("%d entries still pending after Ack", st.Pending)
	}
}

func TestEnqueueAfterClose(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	q.Close()
	if err := q.Enqueue(context.Background(), testEvent(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close = %v, want ErrClosed", err)
	}
}

// TestEnqueueTimeout points the queue at a server that accepts connections
// and never answers: Enqueue gives up when the caller's context ends, not
// after the client's read timeout, and a later call works the same.
func TestEnqueueTimeout(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: testutil.SilentServer(t), MaxRetries: -1, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	q, err := New(c, Options{Stream: testutil.RedisPrefix(t, "pl:test:")})
	if err == nil {
		t.Cleanup(func() { q.Close() })
	} else {
		t.Fatalf("New: %v", err)
	}

	for i := range 3 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := q.Enqueue(ctx, testEvent(i))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: Enqueue = %v, want DeadlineExceeded", i, err)
		}
		if d := time.Since(start); d >= time.Second { // the read timeout is 2s
			t.Fatalf("call %d: Enqueue gave up after %v", i, d)
		}
	}
}

// TestCloseEndsAHungWrite: Close interrupts a round trip to a Redis that
// stopped answering after its grace second, rather than waiting out the
// client's read timeout.
func TestCloseEndsAHungWrite(t *testing.T) {
	proxy := testutil.StartProxy(t, testClient(t).Options().Addr)
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	t.Cleanup(func() { c.Close() })
	q, err := New(c, testOptions(t, testClient(t)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	proxy.Stall()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Enqueue(ctx, testEvent(0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue = %v, want DeadlineExceeded", err)
	}
	start := time.Now()
	q.Close()
	if d := time.Since(start); d > closeGrace+time.Second {
		t.Fatalf("Close took %v with a write hanging, want about %v", d, closeGrace)
	}
	proxy.Restore()
	if err := c.Ping(context.Background()).Err(); errors.Is(err, redis.ErrClosed) {
		t.Fatal("Close closed the caller's client")
	}
}

func TestNewWhileRedisIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	q, err := New(c, Options{Stream: testutil.RedisPrefix(t, "pl:test:")})
	if err != nil {
		t.Fatalf("New with Redis down = %v, want a queue that fails per call", err)
	}
	defer q.Close()
	if err := q.Enqueue(context.Background(), testEvent(0)); err == nil {
		t.Fatal("Enqueue with Redis down succeeded")
	}
	if err := q.Ping(context.Background()); err == nil {
		t.Fatal("Ping with Redis down succeeded")
	}
}

func TestReadRecreatesDeletedGroup(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	c.Del(ctx, q.opts.Stream) // an operator's FLUSHALL, or Redis started empty
	if msgs, err := q.Read(ctx, 10, 10*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Fatalf("Read after the stream vanished = %v, %v", msgs, err)
	}
	ev := testEvent(0)
	if err := q.Enqueue(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if msgs := readAll(t, q, 1); msgs[0].Event.ID != ev.ID {
		t.Fatalf("read %s, want %s", msgs[0].Event.ID, ev.ID)
	}
}

func TestConcurrentProducersExactlyN(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	const producers, each = 32, 100
	sent := make(chan string, producers*each)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := testEvent(p*each + i)
				if err := q.Enqueue(ctx, ev); err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				sent <- ev.ID
			}
		}()
	}
	wg.Wait()
	close(sent)

	want := map[string]bool{}
	for id := range sent {
		want[id] = true
	}
	msgs := readAll(t, q, producers*each)
	got := map[string]bool{}
	for _, m := range msgs {
		if got[m.Event.ID] {
			t.Fatalf("event %s read twice", m.Event.ID)
		}
		if !want[m.Event.ID] {
			t.Fatalf("event %s was never sent", m.Event.ID)
		}
		got[m.Event.ID] = true
	}
	entries := c.XRange(ctx, q.opts.Stream, "-", "+").Val()
	if n := streamEvents(t, entries); n != producers*each {
		t.Fatalf("stream holds %d events, want %d", n, producers*each)
	}
	// Concurrent hits share entries, not only round trips.
	if len(entries) >= producers*each {
		t.Fatalf("%d entries for %d events: no group commit shared an entry", len(entries), producers*each)
	}
}

// streamEvents counts the events in entries.
func streamEvents(t *testing.T, entries []redis.XMessage) int {
	t.Helper()
	n := 0
	for _, e := range entries {
		if v, ok := e.Values[fieldBatch].(string); ok {
			if !splitBatch(v, func(int, string) { n++ }) {
				t.Fatalf("entry %s: malformed batch", e.ID)
			}
			continue
		}
		n++
	}
	return n
}

func TestConsumersShareWork(t *testing.T) {
	c := testClient(t)
	opts := testOptions(t, c)
	a := newQueue(t, c, opts)
	opts.Consumer = "c2"
	b := newQueue(t, c, opts)
	ctx := context.Background()

	const n = 200
	for i := range n {
		if err := a.Enqueue(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	seen := map[string]string{}
	perConsumer := map[string]int{}
	var wg sync.WaitGroup
	for _, q := range []*Queue{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msgs, err := q.Read(ctx, 7, 50*time.Millisecond)
				if err != nil {
					t.Errorf("Read: %v", err)
					return
				}
				if len(msgs) == 0 {
					return
				}
				mu.Lock()
				for _, m := range msgs {
					if other, dup := seen[m.ID]; dup {
						t.Errorf("entry %s handed to %s and %s", m.ID, other, q.opts.Consumer)
					}
					seen[m.ID] = q.opts.Consumer
					perConsumer[q.opts.Consumer]++
				}
				mu.Unlock()
				if err := q.Ack(ctx, msgs); err != nil {
					t.Errorf("Ack: %v", err)
				}
				time.Sleep(time.Millisecond) // let the other consumer in
			}
		}()
	}
	wg.Wait()

	if len(seen) != n {
		t.Fatalf("consumers saw %d entries, want %d", len(seen), n)
	}
	if perConsumer["c1"] == 0 || perConsumer["c2"] == 0 {
		t.Fatalf("work not shared: %v", perConsumer)
	}
}

func TestReclaimFromDeadConsumer(t *testing.T) {
	c := testClient(t)
	opts := testOptions(t, c)
	opts.ClaimIdle = 100 * time.Millisecond
	dead := newQueue(t, c, opts)
	opts.Consumer = "c2"
	alive := newQueue(t, c, opts)
	ctx := context.Background()

	want := []event.Event{testEvent(0), testEvent(1)}
	if err := dead.Enqueue(ctx, want...); err != nil {
		t.Fatal(err)
	}
	// The first consumer takes the entries and never acknowledges them.
	first := readAll(t, dead, 2)

	got := readAll(t, alive, 2)
	for i, m := range got {
		if m.ID != first[i].ID || m.Event.ID != want[i].ID {
			t.Fatalf("reclaimed %s (%s), want %s (%s)", m.ID, m.Event.ID, first[i].ID, want[i].ID)
		}
		if m.Deliveries != 2 {
			t.Fatalf("reclaimed entry has deliveries %d, want 2", m.Deliveries)
		}
	}
	if err := alive.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, alive); st.Length != 0 || st.Pending != 0 {
		t.Fatalf("stats after reclaim and ack = %+v, want empty", st)
	}
}

// deadEntries returns the dead-letter stream's entries.
func deadEntries(t *testing.T, c *redis.Client, q *Queue) []redis.XMessage {
	t.Helper()
	entries, err := c.XRange(context.Background(), q.opts.DeadStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestPoisonEntries(t *testing.T) {
	ctx := context.Background()

	t.Run("undecodable", func(t *testing.T) {
		c := testClient(t)
		q := newQueue(t, c, testOptions(t, c))

		corrupt := "\x01\x00\x7fshort" // binary format, a length beyond the end
		for _, values := range [][]string{{fieldEvent, "{not json"}, {fieldBatch, frames(corrupt)}, {"other", "x"}} {
			if err := c.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream, Values: values}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		good := testEvent(1)
		if err := q.Enqueue(ctx, good); err != nil {
			t.Fatal(err)
		}

		msgs := readAll(t, q, 1)
		if msgs[0].Event.ID != good.ID {
			t.Fatalf("read %+v, want the good event", msgs[0].Event)
		}
		dead := deadEntries(t, c, q)
		if len(dead) != 3 {
			t.Fatalf("dead-letter stream holds %d entries, want 3", len(dead))
		}
		if dead[0].Values[fieldEvent] != "{not json" || dead[0].Values["source_id"] == "" ||
			dead[0].Values["error"] != "decode: malformed entry" {
			t.Fatalf("dead letter = %v, want the original field, source_id and error", dead[0].Values)
		}
		if dead[1].Values[fieldEvent] != corrupt ||
			dead[1].Values["error"] != "decode: event: malformed encoding: id at byte 2: length 127 exceeds the 5 bytes left" {
			t.Fatalf("dead letter = %q, want the original bytes and the decode error", dead[1].Values)
		}
		if dead[2].Values["other"] != "x" {
			t.Fatalf("dead letter = %v, want the original field kept", dead[2].Values)
		}
		if st := mustStats(t, q); st.DeadLetters != 3 || st.Pending != 1 || st.Length != 1 {
			t.Fatalf("stats = %+v, want 3 dead letters and only the good entry pending", st)
		}
	})

	t.Run("dead letter by the flusher", func(t *testing.T) {
		c := testClient(t)
		opts := testOptions(t, c)
		opts.ClaimIdle = 50 * time.Millisecond
		q := newQueue(t, c, opts)

		ev := testEvent(1)
		if err := q.Enqueue(ctx, ev, testEvent(2)); err != nil {
			t.Fatal(err)
		}
		msgs := readAll(t, q, 2)
		if err := q.DeadLetter(ctx, msgs[:1], errors.New("store rejected row")); err != nil {
			t.Fatal(err)
		}
		// A second call for the same entry adds nothing.
		if err := q.DeadLetter(ctx, msgs[:1], errors.New("again")); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(ctx, msgs[1:]); err != nil {
			t.Fatal(err)
		}

		dead := deadEntries(t, c, q)
		if len(dead) != 1 || dead[0].Values["error"] != "store rejected row" ||
			dead[0].Values["source_id"] != msgs[0].ID {
			t.Fatalf("dead letters = %v", dead)
		}
		wantShownAsJSON(t, dead[0], msgs[0].Event)
		// It is acknowledged: never handed out again, not even by a claim.
		time.Sleep(2 * opts.ClaimIdle)
		if again, err := q.Read(ctx, 10, 20*time.Millisecond); err != nil || len(again) != 0 {
			t.Fatalf("Read after dead letter = %v, %v; want nothing", again, err)
		}
		if st := mustStats(t, q); st.Length != 0 || st.DeadLetters != 1 {
			t.Fatalf("stats = %+v", st)
		}
	})

	t.Run("too many deliveries", func(t *testing.T) {
		c, q := claimQueue(t, 20*time.Millisecond, 3)

		poison, next := testEvent(1), testEvent(2)
		if err := q.Enqueue(ctx, poison); err != nil {
			t.Fatal(err)
		}
		// A flusher that crashes on this entry every time: read, never ack.
		for want := 1; want <= 3; want++ {
			msgs := readAll(t, q, 1)
			if msgs[0].Deliveries != want {
				t.Fatalf("delivery %d: Deliveries = %d", want, msgs[0].Deliveries)
			}
		}
		if err := q.Enqueue(ctx, next); err != nil {
			t.Fatal(err)
		}
		// The fourth delivery would exceed the limit: the entry is set
		// aside at its next claim, and the next one comes through.
		gotNext := false
		deadline := time.Now().Add(5 * time.Second)
		for (!gotNext || c.XLen(ctx, q.opts.DeadStream).Val() == 0) && time.Now().Before(deadline) {
			msgs, err := q.Read(ctx, 10, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				switch m.Event.ID {
				case next.ID:
					gotNext = true
					q.Ack(ctx, []queue.Message{m})
				case poison.ID:
					t.Fatalf("poison entry handed out again, deliveries %d", m.Deliveries)
				}
			}
		}
		if !gotNext {
			t.Fatal("the entry after the poison one never came through")
		}
		dead := deadEntries(t, c, q)
		if len(dead) != 1 || dead[0].Values["error"] != "delivered 4 times without acknowledgement" {
			t.Fatalf("dead letters = %v", dead)
		}
		wantShownAsJSON(t, dead[0], poison)
		if st := mustStats(t, q); st.Length != 0 || st.DeadLetters != 1 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

// wantShownAsJSON checks that a dead letter shows the event as JSON, for
// operators.
func wantShownAsJSON(t *testing.T, dead redis.XMessage, want event.Event) {
	t.Helper()
	raw, _ := dead.Values[fieldEvent].(string)
	var shown event.Event
	if err := json.Unmarshal([]byte(raw), &shown); err != nil || !reflect.DeepEqual(shown, want) {
		t.Fatalf("dead letter shows %q (%v), want the event as JSON", raw, err)
	}
}

// TestOneFormat: the queue writes batch entries only, and an entry in any
// other shape (one event per entry, JSON, an extra field) is malformed:
// dead-lettered as it is, counted, never stored.
func TestOneFormat(t *testing.T) {
	ctx := context.Background()
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))

	ev := testEvent(1)
	asJSON, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	malformed := [][]string{
		{fieldEvent, encoded(t, ev)},
		{fieldEvent, string(asJSON)},
		{fieldBatch, frames(encoded(t, ev)), "s", "0:1:2:1"},
	}
	for _, values := range malformed {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	good := testEvent(2)
	if err := q.Enqueue(ctx, good); err != nil {
		t.Fatal(err)
	}
	entries := c.XRange(ctx, q.opts.Stream, "-", "+").Val()
	if got := entries[len(entries)-1].Values; len(got) != 1 || got[fieldBatch] != frames(encoded(t, good)) {
		t.Fatalf("Enqueue wrote %q, want one batch entry", got)
	}

	msgs := readAll(t, q, 1)
	if len(msgs) != 1 || !reflect.DeepEqual(msgs[0].Event, good) {
		t.Fatalf("read %+v, want only the batch entry's event", msgs)
	}
	dead := deadEntries(t, c, q)
	if len(dead) != len(malformed) {
		t.Fatalf("dead letters = %v, want the %d malformed entries", dead, len(malformed))
	}
	for i, d := range dead {
		if d.Values["error"] != "decode: malformed entry" || d.Values[malformed[i][0]] != malformed[i][1] {
			t.Fatalf("dead letter %d = %q, want entry %q copied with its error", i, d.Values, malformed[i])
		}
	}
	if st := mustStats(t, q); st.DeadLetters != int64(len(malformed)) {
		t.Fatalf("stats = %+v, want %d dead letters", st, len(malformed))
	}
}

func TestTrimKeepsUnacked(t *testing.T) {
	c := testClient(t)
	opts := testOptions(t, c)
	q := newQueue(t, c, opts)
	ctx := context.Background()

	for i := range 10 {
		if err := q.Enqueue(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.XRange(ctx, opts.Stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	read := readAll(t, q, 6)
	ack := func(idx ...int) {
		t.Helper()
		var msgs []queue.Message
		for _, i := range idx {
			msgs = append(msgs, read[i])
		}
		if err := q.Ack(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	// remaining reports the indexes (into all) still in the stream.
	remaining := func() []int {
		t.Helper()
		left, err := c.XRange(ctx, opts.Stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, e := range left {
			for i, a := range all {
				if a.ID == e.ID {
					idx = append(idx, i)
				}
			}
		}
		return idx
	}

	steps := []struct {
		name        string
		do          func()
		wantRemoved int64
		wantFirst   int // index of the first entry left
		wantLength  int64
	}{
		{"nothing acked", func() {}, 0, 0, 10},
		// Pending {2,4,5}, undelivered {6..9}: only 0 and 1 may go.
		{"acked below a gap", func() { ack(0, 1, 3) }, 2, 2, 7},
		// A second group that read nothing holds everything back.
		{"another group behind", func() {
			if err := c.XGroupCreate(ctx, opts.Stream, "other", "0").Err(); err != nil {
				t.Fatal(err)
			}
		}, 0, 2, 7},
		{"other group gone", func() { c.XGroupDestroy(ctx, opts.Stream, "other") }, 0, 2, 7},
		// Pending none, undelivered {6..9}: entries up to 5 go.
		{"all delivered acked", func() { ack(2, 4, 5) }, 4, 6, 4},
		{"rest read and acked", func() {
			read = readAll(t, q, 4)
			ack(0, 1, 2, 3)
		}, 4, -1, 0},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			n, err := q.Trim(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != s.wantRemoved {
				t.Errorf("Trim removed %d entries, want %d", n, s.wantRemoved)
			}
			left := remaining()
			if s.wantFirst < 0 {
				if len(left) != 0 {
					t.Errorf("entries left %v, want none", left)
				}
			} else if len(left) == 0 || left[0] != s.wantFirst || left[len(left)-1] != 9 {
				t.Errorf("entries left %v, want %d..9", left, s.wantFirst)
			}
			if st := mustStats(t, q); st.Length != s.wantLength {
				t.Errorf("Length = %d, want %d", st.Length, s.wantLength)
			}
		})
	}

	// Enqueue still works after the stream was trimmed empty, and the lag
	// stays exact.
	if err := q.Enqueue(ctx, testEvent(11)); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, q); st.Length != 1 {
		t.Fatalf("Length after trim and enqueue = %d, want 1", st.Length)
	}
}

func TestStatsWhenRedisCannotTellTheLag(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	for i := range 5 {
		if err := q.Enqueue(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	readAll(t, q, 1)
	entries := c.XRange(ctx, q.opts.Stream, "-", "+").Val()
	// A deleted entry after the group's position makes XINFO's lag null.
	c.XDel(ctx, q.opts.Stream, entries[2].ID)
	for _, g := range c.XInfoGroups(ctx, q.opts.Stream).Val() {
		if g.Lag != -1 {
			t.Fatalf("lag = %d; this Redis still reports it, the fallback is not exercised", g.Lag)
		}
	}
	if st := mustStats(t, q); st.Length != 4 || st.Pending != 1 {
		t.Fatalf("stats = %+v, want 1 pending + 3 undelivered", st)
	}
}

func TestIDs(t *testing.T) {
	for _, tc := range []struct{ in, next string }{
		{"0-0", "0-1"},
		{"1700000000000-5", "1700000000000-6"},
		{"5-18446744073709551615", "6-0"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := nextID(tc.in)
			if err != nil || got != tc.next {
				t.Fatalf("nextID(%q) = %q, %v; want %q", tc.in, got, err, tc.next)
			}
			if compareIDs(tc.in, got) != -1 || compareIDs(got, tc.in) != 1 || compareIDs(got, got) != 0 {
				t.Fatalf("compareIDs disagrees with nextID for %q", tc.in)
			}
		})
	}
	if _, err := nextID("garbage"); err == nil {
		t.Fatal("nextID accepted a malformed id")
	}
}

// A process restarted under the name of one that crashed reads the entries
// left pending under that name at once, long before ClaimIdle, each once,
// and then the new ones; another consumer does not take them meanwhile.
func TestRestartReadsOwnPending(t *testing.T) {
	c := testClient(t)
	opts := testOptions(t, c)
	opts.ClaimIdle = time.Hour
	opts.Consumer = "node-a"
	crashed := newQueue(t, c, opts)
	ctx := context.Background()

	var want []event.Event
	for i := range 5 {
		want = append(want, testEvent(i))
		if err := crashed.Enqueue(ctx, want[i]); err != nil { // one entry each
			t.Fatal(err)
		}
	}
	first := readAll(t, crashed, 5) // and never acknowledged
	later := []event.Event{testEvent(5), testEvent(6)}
	if err := crashed.Enqueue(ctx, later...); err != nil {
		t.Fatal(err)
	}

	other := newQueue(t, c, Options{Stream: opts.Stream, Consumer: "node-b", ClaimIdle: time.Hour})
	if msgs, err := other.Read(ctx, 100, 50*time.Millisecond); err != nil || len(msgs) != 2 {
		t.Fatalf("another node read %d messages (%v), want the 2 new ones", len(msgs), err)
	} else if err := other.Ack(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := crashed.Enqueue(ctx, testEvent(7)); err != nil {
		t.Fatal(err)
	}

	restarted := newQueue(t, c, opts)
	var got []queue.Message
	for len(got) < 6 { // two at a time, to page through the pending list
		msgs, err := restarted.Read(ctx, 2, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			t.Fatalf("read %d messages, then none", len(got))
		}
		got = append(got, msgs...)
	}
	for i, m := range got[:5] {
		if m.ID != first[i].ID || m.Event.ID != want[i].ID || m.Deliveries < 2 {
			t.Fatalf("message %d: %s (%s, deliveries %d), want the pending %s (%s)", i, m.ID, m.Event.ID, m.Deliveries, first[i].ID, want[i].ID)
		}
	}
	if got[5].Deliveries != 1 {
		t.Fatalf("the new entry after the pending ones: deliveries %d", got[5].Deliveries)
	}
	if msgs, err := restarted.Read(ctx, 100, 50*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Fatalf("read %d more messages (%v), want none", len(msgs), err)
	}
	if err := restarted.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, restarted); st.Length != 0 || st.Pending != 0 {
		t.Fatalf("stats = %+v, want empty", st)
	}
}
