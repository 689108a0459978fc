package localq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
)

// TestUndecodableEntry: a record whose checksum is fine but whose payload
// is not an event goes to the dead-letter log instead of blocking the queue.
func TestUndecodableEntry(t *testing.T) {
	cases := []struct {
		name  string
		after bool // a valid event follows the bad record
	}{
		{"in the middle", true},
		{"at the end", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			q, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Enqueue(ctx, event.Event{ID: "a", SiteID: "s", Type: "pageview"}); err != nil {
				t.Fatal(err)
			}
			q.Close()

			f, err := os.OpenFile(segmentPath(dir, 1), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(appendRecord(nil, []byte(`{"id": 17`)))
			f.Close()

			q, err = Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			want := []string{"a"}
			if c.after {
				if err := q.Enqueue(ctx, event.Event{ID: "b", SiteID: "s", Type: "pageview"}); err != nil {
					t.Fatal(err)
				}
				want = append(want, "b")
			}
			msgs, err := q.Read(ctx, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(want) {
				t.Fatalf("read %d messages, want %v", len(msgs), want)
			}
			for i, m := range msgs {
				if m.Event.ID != want[i] {
					t.Fatalf("message %d is %q, want %q", i, m.Event.ID, want[i])
				}
			}
			if err := q.Ack(ctx, msgs); err != nil {
				t.Fatal(err)
			}
			st, _ := q.Stats(ctx)
			if st.Length != 0 || st.Pending != 0 || st.DeadLetters != 1 {
				t.Fatalf("stats %+v, want empty queue and one dead letter", st)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	rec := appendRecord(nil, []byte(`{"id":"x"}`))
	cases := []struct {
		name     string
		b        []byte
		wantSize int
		wantNeed int
		wantErr  bool
	}{
		{"whole", rec, len(rec), 0, false},
		{"with more after", append(append([]byte{}, rec...), rec...), len(rec), 0, false},
		{"short header", rec[:5], 0, headerSize, false},
		{"short payload", rec[:len(rec)-1], 0, len(rec), false},
		{"zero length", make([]byte, 16), 0, 0, true},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, 0, 0, true},
		{"bad checksum", append(append([]byte{}, rec[:len(rec)-1]...), '!'), 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, size, need, err := parseRecord(c.b)
			if size != c.wantSize || need != c.wantNeed || (err != nil) != c.wantErr {
				t.Fatalf("got size %d need %d err %v; want %d %d err=%v", size, need, err, c.wantSize, c.wantNeed, c.wantErr)
			}
		})
	}
}

// TestDamageAfterOpen: a record that goes bad on disk after it was written
// costs the rest of its segment, not the queue; the backlog count follows.
func TestDamageAfterOpen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q, err := Open(dir, Options{SegmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range 40 {
		if err := q.Enqueue(ctx, event.Event{ID: fmt.Sprintf("e%02d", i), SiteID: "s", Type: "pageview", Pathname: "/some/longer/path"}); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := listSegments(dir)
	if len(ids) < 3 {
		t.Fatalf("%d segments, want at least 3", len(ids))
	}

	// Flip a byte in the middle of the first segment.
	path := segmentPath(dir, ids[0])
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0xff
	os.WriteFile(path, b, 0o600)

	var got []queue.Message
	for {
		msgs, err := q.Read(ctx, 7, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		got = append(got, msgs...)
	}
	if len(got) >= 40 || len(got) < 20 {
		t.Fatalf("read %d of 40 events, want the damaged segment's tail skipped only", len(got))
	}
	if err := q.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Stats(ctx); st.Length != 0 || st.Pending != 0 {
		t.Fatalf("stats %+v after acking everything readable", st)
	}
	if err := q.Enqueue(ctx, event.Event{ID: "later", SiteID: "s", Type: "pageview"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Stats(ctx); st.Length != 1 {
		t.Fatalf("length %d after one more event, want 1", st.Length)
	}
}

// TestUndecodableBinaryEntry: a damaged binary record goes to the
// dead-letter log with its bytes (base64 in the JSON line), not mangled
// into text.
func TestUndecodableBinaryEntry(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	q, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()

	ev := event.Event{ID: "x", SiteID: "s", Type: "pageview"}
	bad, _ := ev.MarshalBinary()
	bad = append(bad, 0xff) // trailing garbage the checksum was computed over
	f, err := os.OpenFile(segmentPath(dir, 1), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendRecord(nil, bad))
	f.Close()

	q, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := q.Read(ctx, 10, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("Read = %v, %v; want nothing", msgs, err)
	}
	q.Close()

	line, err := os.ReadFile(filepath.Join(dir, deadDir, deadFile))
	if err != nil {
		t.Fatal(err)
	}
	var dl DeadLetter
	if err := json.Unmarshal(line, &dl); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dl.Payload, bad) || !strings.Contains(dl.Error, "trailing bytes") {
		t.Fatalf("dead letter %s, want the record's bytes and the decode error", line)
	}
}
