package redisq

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
)

// frames builds a batch entry's value from raw event encodings.
func frames(raws ...string) string {
	var b []byte
	for _, r := range raws {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return string(b)
}

func encoded(t *testing.T, ev event.Event) string {
	t.Helper()
	b, err := ev.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids(msgs []queue.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Event.ID
	}
	return out
}

// TestBatchEntries: a group commit's events share one entry of at most
// MaxBatch events, and Read hands entries out whole.
func TestBatchEntries(t *testing.T) {
	ctx := context.Background()
	c := testClient(t)
	opts := testOptions(t, c)
	opts.MaxBatch = 3
	q := newQueue(t, c, opts)

	evs := make([]event.Event, 7)
	for i := range evs {
		evs[i] = testEvent(i)
	}
	if err := q.Enqueue(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	entries := c.XRange(ctx, opts.Stream, "-", "+").Val()
	var sizes []int
	for _, e := range entries {
		n := 0
		splitBatch(e.Values[fieldBatch].(string), func(int, string) { n++ })
		sizes = append(sizes, n)
	}
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 {
		t.Fatalf("entry sizes %v, want [3 3 1]", sizes)
	}

	// Read(4) takes the second entry whole, past max, and keeps the third
	// for the next Read.
	first, err := q.Read(ctx, 4, 100*time.Millisecond)
	if err != nil || len(first) != 6 {
		t.Fatalf("Read(4) = %d messages, %v; want the first two entries' 6", len(first), err)
	}
	second, err := q.Read(ctx, 4, 100*time.Millisecond)
	if err != nil || len(second) != 1 {
		t.Fatalf("Read(4) = %d messages, %v; want the last entry's 1", len(second), err)
	}
	got := append(ids(first), ids(second)...)
	for i, ev := range evs {
		if got[i] != ev.ID {
			t.Fatalf("message %d: event %s, want %s (stream order)", i, got[i], ev.ID)
		}
	}
	if want := entries[0].ID + "/2"; first[2].ID != want {
		t.Fatalf("message id %q, want %q", first[2].ID, want)
	}
	if second[0].ID != entries[2].ID {
		t.Fatalf("the id of an entry of one event is %q, want the entry's %q", second[0].ID, entries[2].ID)
	}

	// An entry larger than max comes alone.
	if err := q.Enqueue(ctx, testEvent(10), testEvent(11), testEvent(12)); err != nil {
		t.Fatal(err)
	}
	if big, err := q.Read(ctx, 1, 100*time.Millisecond); err != nil || len(big) != 3 {
		t.Fatalf("Read(1) = %d messages, %v; want the whole entry of 3", len(big), err)
	} else {
		second = append(second, big...)
	}

	if st := mustStats(t, q); st.Pending != 4 || st.Length != 4 {
		t.Fatalf("stats = %+v, want 4 entries pending", st)
	}
	if err := q.Ack(ctx, append(first, second...)); err != nil {
		t.Fatal(err)
	}
	wantAllAcked(t, q)
}

// TestBatchPoison: an event of a batch entry that does not decode, or that
// the store rejects, is dead-lettered alone; the entry's other events go
// on and the entry is acknowledged with them.
func TestBatchPoison(t *testing.T) {
	ctx := context.Background()

	t.Run("undecodable event", func(t *testing.T) {
		c := testClient(t)
		q := newQueue(t, c, testOptions(t, c))
		a, b := testEvent(1), testEvent(2)
		corrupt := "\x01\x00\x7fshort"
		id := c.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream,
			Values: []string{fieldBatch, frames(encoded(t, a), corrupt, encoded(t, b))}}).Val()
		bad := c.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream,
			Values: []string{fieldBatch, frames(corrupt, corrupt)}}).Val()
		broken := c.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream,
			Values: []string{fieldBatch, "\xff\xff\x7fxyz"}}).Val()

		msgs := readAll(t, q, 2)
		if more, err := q.Read(ctx, 10, 10*time.Millisecond); err != nil || len(more) != 0 {
			t.Fatalf("Read = %v, %v; want nothing more", more, err)
		}
		if msgs[0].Event.ID != a.ID || msgs[1].Event.ID != b.ID || msgs[1].ID != id+"/2" {
			t.Fatalf("read %v (%v), want the two good events", ids(msgs), msgs)
		}
		dead := deadEntries(t, c, q)
		if len(dead) != 4 {
			t.Fatalf("dead letters = %v, want 4", dead)
		}
		for i, want := range []string{id + "/1", bad + "/0", bad + "/1"} {
			if dead[i].Values["source_id"] != want || dead[i].Values[fieldEvent] != corrupt ||
				!strings.HasPrefix(dead[i].Values["error"].(string), "decode: event: malformed") {
				t.Fatalf("dead letter %d = %q, want %s's raw event and its error", i, dead[i].Values, want)
			}
		}
		if dead[3].Values["source_id"] != broken || dead[3].Values[fieldBatch] != "\xff\xff\x7fxyz" {
			t.Fatalf("dead letter = %q, want the malformed entry copied", dead[3].Values)
		}
		// The entry of only bad events is acknowledged; the good one is
		// pending until its events are.
		if st := mustStats(t, q); st.Pending != 1 || st.Length != 1 {
			t.Fatalf("stats = %+v, want only the mixed entry pending", st)
		}
		if err := q.Ack(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if st := mustStats(t, q); st.Pending != 0 || st.Length != 0 || st.DeadLetters != 4 {
			t.Fatalf("stats after ack = %+v", st)
		}
	})

	t.Run("rejected event", func(t *testing.T) {
		c, q := claimQueue(t, 20*time.Millisecond, 0)
		if err := q.Enqueue(ctx, testEvent(1), testEvent(2), testEvent(3)); err != nil {
			t.Fatal(err)
		}
		msgs := readAll(t, q, 3)
		if err := q.DeadLetter(ctx, msgs[1:2], errors.New("store rejected row")); err != nil {
			t.Fatal(err)
		}
		// A crash before the ack: the entry comes back, and the event is
		// dead-lettered again, which adds nothing.
		time.Sleep(2 * q.opts.ClaimIdle)
		again := readAll(t, q, 3)
		if again[1].ID != msgs[1].ID || again[1].Deliveries != 2 {
			t.Fatalf("redelivered %+v, want the same messages", again[1])
		}
		if err := q.DeadLetter(ctx, again[1:2], errors.New("again")); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(ctx, []queue.Message{again[0], again[2]}); err != nil {
			t.Fatal(err)
		}
		dead := deadEntries(t, c, q)
		if len(dead) != 1 || dead[0].Values["source_id"] != msgs[1].ID || dead[0].Values["error"] != "store rejected row" {
			t.Fatalf("dead letters = %v", dead)
		}
		wantShownAsJSON(t, dead[0], msgs[1].Event)
		wantAllAcked(t, q)
	})

	t.Run("too many deliveries", func(t *testing.T) {
		c, q := claimQueue(t, 20*time.Millisecond, 2)
		want := []event.Event{testEvent(1), testEvent(2)}
		if err := q.Enqueue(ctx, want...); err != nil {
			t.Fatal(err)
		}
		var msgs []queue.Message
		for range 2 {
			msgs = readAll(t, q, 2) // never acknowledged
			time.Sleep(2 * q.opts.ClaimIdle)
		}
		deadline := time.Now().Add(5 * time.Second)
		for c.XLen(ctx, q.opts.DeadStream).Val() < 2 && time.Now().Before(deadline) {
			got, err := q.Read(ctx, 10, 10*time.Millisecond)
			if err != nil || len(got) != 0 {
				t.Fatalf("Read = %v, %v; want the entry set aside", got, err)
			}
		}
		dead := deadEntries(t, c, q)
		if len(dead) != 2 {
			t.Fatalf("dead letters = %v, want one per event", dead)
		}
		for i := range dead {
			if dead[i].Values["source_id"] != msgs[i].ID || dead[i].Values["error"] != "delivered 3 times without acknowledgement" {
				t.Fatalf("dead letter %d = %v", i, dead[i].Values)
			}
			wantShownAsJSON(t, dead[i], want[i])
		}
		wantAllAcked(t, q)
	})
}

func FuzzSplitBatch(f *testing.F) {
	f.Add(frames("abc", "", "de"))
	f.Add("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
	f.Add("\x05ab")
	f.Fuzz(func(t *testing.T, v string) {
		total := 0
		if splitBatch(v, func(_ int, raw string) { total += len(raw) }) && total > len(v) {
			t.Fatalf("events of %d bytes in a value of %d", total, len(v))
		}
	})
}

func TestAppendFramed(t *testing.T) {
	for _, n := range []int{0, 100, 1 << 14, 1 << 22} { // lengths of 1, 2, 3 and 4 bytes
		ev := testEvent(1)
		ev.Title = strings.Repeat("x", n)
		b, err := appendFramed([]byte("prefix"), &ev)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if !splitBatch(string(b[len("prefix"):]), func(_ int, raw string) { got = append(got, raw) }) ||
			len(got) != 1 || got[0] != encoded(t, ev) {
			t.Fatalf("title of %d bytes: framing does not round-trip", n)
		}
	}
}

// TestReadAppend: ReadAppend keeps what dst holds, appends whole entries
// after it, and holds the rest for the next read.
func TestReadAppend(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	var evs []event.Event
	for i := range 3 { // three entries of three events
		entry := []event.Event{testEvent(3 * i), testEvent(3*i + 1), testEvent(3*i + 2)}
		if err := q.Enqueue(ctx, entry...); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, entry...)
	}
	prefix := []queue.Message{{ID: "kept-0"}, {ID: "kept-1"}}
	dst := append(make([]queue.Message, 0, 16), prefix...)

	got, err := q.ReadAppend(ctx, dst, 4, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2+6 || got[0].ID != "kept-0" || got[1].ID != "kept-1" {
		t.Fatalf("ReadAppend(dst of 2, max 4) = %d messages starting %q, want dst's 2 then two whole entries", len(got), got[0].ID)
	}
	if &got[0] != &dst[:1][0] {
		t.Fatal("ReadAppend did not append onto dst, which had room")
	}
	rest, err := q.ReadAppend(ctx, nil, 10, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	all := append(got[2:], rest...)
	if len(all) != len(evs) {
		t.Fatalf("read %d events in all, want %d", len(all), len(evs))
	}
	for i := range evs {
		if all[i].Event.ID != evs[i].ID {
			t.Fatalf("message %d: event %s, want %s (stream order)", i, all[i].Event.ID, evs[i].ID)
		}
	}
	if err := q.Ack(ctx, all); err != nil {
		t.Fatal(err)
	}
	wantAllAcked(t, q)
}

// TestHeldOverSeveralReads: what a Read took past max is handed out by the
// next Reads in stream order, whole entries at a time, each message once.
func TestHeldOverSeveralReads(t *testing.T) {
	c := testClient(t)
	q := newQueue(t, c, testOptions(t, c))
	ctx := context.Background()

	var evs []event.Event
	for i := range 5 { // five entries of three events
		entry := []event.Event{testEvent(3 * i), testEvent(3*i + 1), testEvent(3*i + 2)}
		if err := q.Enqueue(ctx, entry...); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, entry...)
	}
	// The first Read does not know the entries' size yet and takes four
	// entries for max 4: it hands out two and holds two, which the next
	// two Reads of max 1 hand out one each; the third reads the last.
	var all []queue.Message
	for _, r := range []struct{ max, want int }{{4, 6}, {1, 3}, {1, 3}, {1, 3}} {
		got, err := q.Read(ctx, r.max, 10*time.Millisecond)
		if err != nil || len(got) != r.want {
			t.Fatalf("Read(%d) after %d messages = %d, %v; want %d", r.max, len(all), len(got), err, r.want)
		}
		all = append(all, got...)
	}
	for i := range evs {
		if all[i].Event.ID != evs[i].ID {
			t.Fatalf("message %d: event %s, want %s (stream order)", i, all[i].Event.ID, evs[i].ID)
		}
	}
	if err := q.Ack(ctx, all); err != nil {
		t.Fatal(err)
	}
	wantAllAcked(t, q)
}
