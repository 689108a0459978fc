package localq_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
)

func testEvent(id string) event.Event {
	return event.Event{
		ID:        id,
		Time:      time.Now().UTC().Truncate(time.Millisecond),
		SiteID:    "site1",
		Type:      event.Pageview,
		Hostname:  "example.com",
		Pathname:  "/docs/" + id,
		Title:     "Docs",
		Channel:   "direct",
		Country:   "DE",
		Device:    "desktop",
		Browser:   "Firefox",
		OS:        "Linux",
		VisitorID: 42,
		SessionID: 43,
		Props:     map[string]string{"plan": "pro"},
	}
}

func events(prefix string, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = testEvent(fmt.Sprintf("%s-%d", prefix, i))
	}
	return evs
}

func open(t testing.TB, dir string, opts localq.Options) *localq.Queue {
	t.Helper()
	q, err := localq.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func enqueue(t testing.TB, q *localq.Queue, evs ...event.Event) {
	t.Helper()
	if err := q.Enqueue(context.Background(), evs...); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

// readAll reads until the queue has nothing more for a short while.
func readAll(t testing.TB, q *localq.Queue) []queue.Message {
	t.Helper()
	var all []queue.Message
	for {
		msgs, err := q.Read(context.Background(), 1000, 0)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(msgs) == 0 {
			return all
		}
		all = append(all, msgs...)
	}
}

func ack(t testing.TB, q *localq.Queue, msgs []queue.Message) {
	t.Helper()
	if err := q.Ack(context.Background(), msgs); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func ids(msgs []queue.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Event.ID
	}
	return out
}

func eventIDs(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func stats(t testing.TB, q *localq.Queue) queue.Stats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRoundTrip(t *testing.T) {
	q := open(t, t.TempDir(), localq.Options{})
	evs := events("rt", 5)
	evs[0].Time = time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	evs[1].Type, evs[1].Name = event.Custom, "signup"
	evs[2].Latitude, evs[2].Longitude = 52.52, 13.405

	enqueue(t, q, evs[0])
	enqueue(t, q, evs[1:]...)

	st := stats(t, q)
	if st.Length != 5 || st.Pending != 0 {
		t.Fatalf("before read: length %d pending %d, want 5 and 0", st.Length, st.Pending)
	}
	if st.OldestPending < 59*time.Minute {
		t.Fatalf("OldestPending %v, want about an hour (from the first event's time)", st.OldestPending)
	}

	msgs, err := q.Read(context.Background(), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs2, err := q.Read(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || len(msgs2) != 2 {
		t.Fatalf("read %d then %d, want 3 then 2", len(msgs), len(msgs2))
	}
	all := append(msgs, msgs2...)
	seen := map[string]bool{}
	for i, m := range all {
		if !reflect.DeepEqual(m.Event, evs[i]) {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, m.Event, evs[i])
		}
		if m.Deliveries != 1 {
			t.Errorf("message %d: deliveries %d, want 1", i, m.Deliveries)
		}
		if seen[m.ID] {
			t.Errorf("duplicate message id %q", m.ID)
		}
		seen[m.ID] = true
	}

	st = stats(t, q)
	if st.Length != 5 || st.Pending != 5 || st.OldestPending < 59*time.Minute {
		t.Fatalf("after read: %+v, want length 5, pending 5, oldest ~1h", st)
	}

	ack(t, q, all[:3])
	st = stats(t, q)
	if st.Length != 2 || st.Pending != 2 || st.OldestPending > time.Minute {
		t.Fatalf("after acking 3: %+v, want length 2, pending 2, oldest recent", st)
	}
	ack(t, q, all[3:])
	if st = stats(t, q); st.Length != 0 || st.Pending != 0 || st.OldestPending != 0 {
		t.Fatalf("after acking all: %+v, want zeros", st)
	}
}

func TestReadWaits(t *testing.T) {
	q := open(t, t.TempDir(), localq.Options{})
	ctx := context.Background()

	t.Run("times out empty", func(t *testing.T) {
		msgs, err := q.Read(ctx, 10, 20*time.Millisecond)
		if err != nil || len(msgs) != 0 {
			t.Fatalf("got %d messages, err %v; want none, nil", len(msgs), err)
		}
	})

	t.Run("wakes on enqueue", func(t *testing.T) {
		done := make(chan []queue.Message)
		go func() {
			msgs, err := q.Read(ctx, 10, time.Minute)
			if err != nil {
				t.Error(err)
			}
			done <- msgs
		}()
		time.Sleep(20 * time.Millisecond)
		enqueue(t, q, testEvent("late"))
		select {
		case msgs := <-done:
			if len(msgs) != 1 || msgs[0].Event.ID != "late" {
				t.Fatalf("got %v, want the late event", ids(msgs))
			}
			ack(t, q, msgs)
		case <-time.After(10 * time.Second):
			t.Fatal("Read did not wake up on Enqueue")
		}
	})

	t.Run("context ends the wait", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := q.Read(cctx, 10, time.Minute)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})

	t.Run("close ends the wait", func(t *testing.T) {
		q2 := open(t, t.TempDir(), localq.Options{})
		time.AfterFunc(20*time.Millisecond, func() { q2.Close() })
		_, err := q2.Read(ctx, 10, time.Minute)
		if !errors.Is(err, localq.ErrClosed) {
			t.Fatalf("err %v, want ErrClosed", err)
		}
		if err := q2.Enqueue(ctx, testEvent("x")); !errors.Is(err, localq.ErrClosed) {
			t.Fatalf("Enqueue after Close: %v, want ErrClosed", err)
		}
	})
}

func TestConcurrentProducers(t *testing.T) {
	const producers, perProducer = 8, 500
	q := open(t, t.TempDir(), localq.Options{SegmentSize: 64 << 10})
	ctx := context.Background()

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				if err := q.Enqueue(ctx, testEvent(fmt.Sprintf("%d-%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}

	// Consume concurrently, as the flusher does.
	got := map[string]int{}
	next := make([]int, producers) // per-producer order must hold
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < producers*perProducer && time.Now().Before(deadline) {
		msgs, err := q.Read(ctx, 300, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			got[m.Event.ID]++
			var p, i int
			fmt.Sscanf(m.Event.ID, "%d-%d", &p, &i)
			if i != next[p] {
				t.Fatalf("producer %d: got event %d, want %d", p, i, next[p])
			}
			next[p]++
		}
		ack(t, q, msgs)
	}
	wg.Wait()

	if extra := readAll(t, q); len(extra) > 0 {
		t.Fatalf("%d messages beyond the %d enqueued", len(extra), producers*perProducer)
	}
	if len(got) != producers*perProducer {
		t.Fatalf("read %d distinct events, want %d", len(got), producers*perProducer)
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("event %s read %d times", id, n)
		}
	}
	if st := stats(t, q); st.Length != 0 || st.Pending != 0 {
		t.Fatalf("stats after draining: %+v", st)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	q, err := localq.Open(dir, localq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs := events("r", 100)
	enqueue(t, q, evs...)
	first, _ := q.Read(context.Background(), 30, 0)
	ack(t, q, first)
	unacked, _ := q.Read(context.Background(), 20, 0) // handed out, never acked
	if len(first) != 30 || len(unacked) != 20 {
		t.Fatalf("read %d and %d, want 30 and 20", len(first), len(unacked))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Each restart without an ack counts one more delivery for the entries
	// that were handed out.
	for restart, wantDeliveries := range []int{2, 3} {
		q = open(t, dir, localq.Options{})
		if st := stats(t, q); st.Length != 70 || st.Pending != 0 {
			t.Fatalf("restart %d: stats %+v, want length 70, pending 0", restart, st)
		}
		msgs, err := q.Read(context.Background(), 20, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids(msgs), eventIDs(evs[30:50])) {
			t.Fatalf("restart %d: got %v, want events 30..49", restart, ids(msgs))
		}
		for _, m := range msgs {
			if m.Deliveries != wantDeliveries {
				t.Fatalf("restart %d: %s has %d deliveries, want %d", restart, m.ID, m.Deliveries, wantDeliveries)
			}
		}
		q.Close()
	}

	q = open(t, dir, localq.Options{})
	msgs := readAll(t, q)
	if !reflect.DeepEqual(ids(msgs), eventIDs(evs[30:])) {
		t.Fatalf("got %v, want events 30..99", ids(msgs))
	}
	if msgs[0].Deliveries < 2 || msgs[len(msgs)-1].Deliveries != 1 {
		t.Fatalf("deliveries %d (handed out before) and %d (never), want >=2 and 1",
			msgs[0].Deliveries, msgs[len(msgs)-1].Deliveries)
	}
	ack(t, q, msgs)
	q.Close()

	q = open(t, dir, localq.Options{})
	if st := stats(t, q); st.Length != 0 {
		t.Fatalf("after acking everything and reopening: length %d", st.Length)
	}
	if msgs := readAll(t, q); len(msgs) != 0 {
		t.Fatalf("acknowledged entries delivered again: %v", ids(msgs))
	}
}

func TestTornTail(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, lastRecord int64)
		intact int // of the 10 events written
	}{
		{"last byte missing", func(t *testing.T, path string, _ int64) { shrink(t, path, 1) }, 9},
		{"half a record", func(t *testing.T, path string, last int64) { shrink(t, path, last/2) }, 9},
		{"only a header left", func(t *testing.T, path string, last int64) { shrink(t, path, last-8) }, 9},
		{"header cut", func(t *testing.T, path string, last int64) { shrink(t, path, last-3) }, 9},
		{"garbage appended", func(t *testing.T, path string, _ int64) {
			appendBytes(t, path, []byte("\x10\x00\x00\x00garbage-garbage-garbage"))
		}, 10},
		{"zeros appended", func(t *testing.T, path string, _ int64) { appendBytes(t, path, make([]byte, 4096)) }, 10},
		{"flipped byte in last record", func(t *testing.T, path string, _ int64) { flipLastByte(t, path) }, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			q, err := localq.Open(dir, localq.Options{})
			if err != nil {
				t.Fatal(err)
			}
			evs := events("torn", 10)
			var lastSize int64
			for i := range evs {
				before := fileSize(t, segmentFiles(t, dir)[0])
				enqueue(t, q, evs[i])
				lastSize = fileSize(t, segmentFiles(t, dir)[0]) - before
			}
			q.Close()

			c.damage(t, segmentFiles(t, dir)[0], lastSize)

			q = open(t, dir, localq.Options{})
			if st := stats(t, q); st.Length != int64(c.intact) {
				t.Fatalf("length %d after reopening, want %d", st.Length, c.intact)
			}
			enqueue(t, q, testEvent("after"))
			want := append(eventIDs(evs[:c.intact]), "after")
			if got := ids(readAll(t, q)); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			q.Close()

			// The repaired log reopens cleanly.
			q = open(t, dir, localq.Options{})
			if got := ids(readAll(t, q)); !reflect.DeepEqual(got, want) {
				t.Fatalf("second reopen: got %v, want %v", got, want)
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func shrink(t *testing.T, path string, by int64) {
	t.Helper()
	if err := os.Truncate(path, fileSize(t, path)-by); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipLastByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSegmentRotationAndDeletion(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, localq.Options{SegmentSize: 4096})
	evs := events("rot", 200)
	for i := 0; i < len(evs); i += 10 {
		enqueue(t, q, evs[i:i+10]...)
	}
	total := len(segmentFiles(t, dir))
	if total < 5 {
		t.Fatalf("%d segment files for ~%d KiB at 4 KiB each, want rotation", total, 200*350/1024)
	}

	half, err := q.Read(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	ack(t, q, half)
	left := len(segmentFiles(t, dir))
	if left >= total || left <= 1 {
		t.Fatalf("%d of %d segment files left after acking half, want fewer but more than one", left, total)
	}
	if st := stats(t, q); st.Length != 100 {
		t.Fatalf("length %d, want 100", st.Length)
	}

	rest := readAll(t, q)
	if !reflect.DeepEqual(ids(rest), eventIDs(evs[100:])) {
		t.Fatalf("after deletion got %d events, want events 100..199", len(rest))
	}
	ack(t, q, rest)
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segment files after acking everything, want only the active one", n)
	}
	q.Close()

	q = open(t, dir, localq.Options{SegmentSize: 4096})
	if st := stats(t, q); st.Length != 0 {
		t.Fatalf("length %d after reopen, want 0", st.Length)
	}
	enqueue(t, q, testEvent("again"))
	if got := ids(readAll(t, q)); !reflect.DeepEqual(got, []string{"again"}) {
		t.Fatalf("got %v after reopen, want [again]", got)
	}
}

func TestAck(t *testing.T) {
	q := open(t, t.TempDir(), localq.Options{})
	enqueue(t, q, events("a", 10)...)
	msgs, _ := q.Read(context.Background(), 6, 0)
	ctx := context.Background()

	cases := []struct {
		name    string
		msgs    []queue.Message
		wantErr bool
		length  int64
	}{
		{"prefix", msgs[:2], false, 8},
		{"same prefix again", msgs[:2], false, 8},
		{"one in the middle acks up to it", msgs[3:4], false, 6},
		{"older than acked", msgs[:1], false, 6},
		{"malformed id", []queue.Message{{ID: "nope"}}, true, 6},
		{"never handed out", []queue.Message{{ID: "99-0"}}, true, 6},
		{"rest", msgs[4:], false, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := q.Ack(ctx, c.msgs)
			if (err != nil) != c.wantErr {
				t.Fatalf("err %v, want error %v", err, c.wantErr)
			}
			if st := stats(t, q); st.Length != c.length {
				t.Fatalf("length %d, want %d", st.Length, c.length)
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, localq.Options{})
	enqueue(t, q, events("d", 3)...)
	msgs := readAll(t, q)
	cause := errors.New("value out of range")
	if err := q.DeadLetter(context.Background(), msgs[1:2], cause); err != nil {
		t.Fatal(err)
	}
	ack(t, q, msgs)
	if st := stats(t, q); st.DeadLetters != 1 || st.Length != 0 {
		t.Fatalf("stats %+v, want 1 dead letter and nothing left", st)
	}
	q.Close()

	f, err := os.Open(filepath.Join(dir, "dead", "dead.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []localq.DeadLetter
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var dl localq.DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
			t.Fatalf("dead letter line %q: %v", sc.Text(), err)
		}
		lines = append(lines, dl)
	}
	if len(lines) != 1 || lines[0].ID != msgs[1].ID || lines[0].Error != cause.Error() ||
		lines[0].Event == nil || lines[0].Event.ID != "d-1" {
		t.Fatalf("dead letters %+v, want d-1 with its error", lines)
	}

	q = open(t, dir, localq.Options{})
	if st := stats(t, q); st.DeadLetters != 1 {
		t.Fatalf("dead letters after reopen: %d, want 1", st.DeadLetters)
	}
}

func TestDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, localq.Options{})
	if _, err := localq.Open(dir, localq.Options{}); err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
	q.Close()
	q2, err := localq.Open(dir, localq.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	q2.Close()
}
