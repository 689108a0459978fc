package bus_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime/bus"
)

// collector records what a handler received.
type collector struct {
	mu   sync.Mutex
	got  []string
	more chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 100)} }

func (c *collector) handle(m bus.Message) {
	c.mu.Lock()
	c.got = append(c.got, m.Site+" "+string(m.Data))
	c.mu.Unlock()
	c.more <- struct{}{}
}

// wait returns the messages once n arrived, or fails after a generous deadline.
func (c *collector) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("received %d of %d messages", i, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func TestBus(t *testing.T) {
	msgs := []bus.Message{
		{Site: "s1", Data: []byte(`{"type":"arrival"}`)},
		{Site: "s2", Data: []byte("multi\nline")},
		{Site: "bad\nsite", Data: []byte("dropped")},
		{Site: "s1", Data: []byte(`{"type":"leave"}`)},
	}
	want := []string{`s1 {"type":"arrival"}`, "s2 multi\nline", `s1 {"type":"leave"}`}

	t.Run("local", func(t *testing.T) {
		c := newCollector()
		b := bus.NewLocal(c.handle)
		if err := b.Publish(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		// Local delivers everything, framing is a Redis concern.
		if got := c.wait(t, 4); len(got) != 4 || got[0] != want[0] {
			t.Fatalf("got %q", got)
		}
		b.Close()
		if err := b.Publish(context.Background(), msgs[0]); err != bus.ErrClosed {
			t.Fatalf("publish after close: %v, want ErrClosed", err)
		}
	})

	t.Run("redis: every instance receives every message", func(t *testing.T) {
		rdb := testutil.Redis(t)
		channel := testutil.Unique("pltest-live-")

		ca, cb := newCollector(), newCollector()
		a, err := bus.NewRedis(context.Background(), rdb, channel, ca.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := bus.NewRedis(context.Background(), rdb, channel, cb.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()

		if err := a.Publish(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*collector{"publisher": ca, "other": cb} {
			if got := c.wait(t, len(want)); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s instance got %q, want %q", name, got, want)
			}
		}
	})
}
