package bus_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime/bus"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// collector records what a handler received.
type collector struct {
	mu   sync.Mutex
	got  []string
	more chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1000)} }

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
		a := bus.NewRedis(rdb, channel, ca.handle)
		defer a.Close()
		b := bus.NewRedis(rdb, channel, cb.handle)
		defer b.Close()
		ready(t, a, b)

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

// ready waits until every bus is subscribed.
func ready(t *testing.T, buses ...*bus.Redis) {
	t.Helper()
	for _, b := range buses {
		select {
		case <-b.Ready():
		case <-time.After(livetest.Wait):
			t.Fatal("bus never subscribed")
		}
	}
}

// TestRedisOutage: a bus made while Redis is down neither fails nor blocks;
// it subscribes once Redis answers, and again after Redis restarted.
func TestRedisOutage(t *testing.T) {
	srv := livetest.NewRedisServer(t) // not running yet
	rdb := srv.Client()
	ctx := context.Background()
	c := newCollector()
	b := bus.NewRedis(rdb, "live-events", c.handle)
	defer b.Close()

	msg := bus.Message{Site: "s1", Data: []byte("while down")}
	if err := b.Publish(ctx, msg); err == nil {
		t.Fatal("publish with Redis down: no error")
	}
	select {
	case <-b.Ready():
		t.Fatal("ready before Redis ran")
	default:
	}

	srv.Start()
	ready(t, b)
	if err := b.Publish(ctx, bus.Message{Site: "s1", Data: []byte("up")}); err != nil {
		t.Fatal(err)
	}
	if got := c.wait(t, 1); got[0] != "s1 up" {
		t.Fatalf("got %q", got)
	}

	srv.Stop()
	if err := b.Publish(ctx, msg); err == nil {
		t.Fatal("publish with Redis down: no error")
	}
	srv.Start()
	// The bus resubscribes on its own, a moment after Redis is back:
	// publish until a message makes it through.
	deadline := time.Now().Add(livetest.Wait)
	for {
		_ = b.Publish(ctx, bus.Message{Site: "s1", Data: []byte("again")})
		select {
		case <-c.more:
			c.mu.Lock()
			last := c.got[len(c.got)-1]
			c.mu.Unlock()
			if last != "s1 again" {
				t.Fatalf("after the restart got %q", last)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no message after Redis restarted")
		}
	}
}

// TestRedisCloseWhileDown: Close returns while Redis is unreachable.
func TestRedisCloseWhileDown(t *testing.T) {
	srv := livetest.NewRedisServer(t)
	b := bus.NewRedis(srv.Client(), "live-events", func(bus.Message) {})
	time.Sleep(10 * time.Millisecond) // let it try and fail a few times
	if err := b.Close(); err != nil {
		t.Log(err) // the error of the last attempt; nothing to assert
	}
}
