package realtime

import (
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
	dto "github.com/prometheus/client_model/go"
)

func TestSafeClientDiscardReleasesSenders(t *testing.T) {
	c := newSafeClient(subscriptions.NewDefaultClient())
	sent := make(chan struct{})
	go func() {
		c.Send(subscriptions.Message{Name: "x"}) // nobody reads: blocks
		close(sent)
	}()
	c.Discard()
	<-sent // would hang if Discard did not release the sender
	if _, ok := <-c.Channel(); ok {
		t.Fatal("channel still open after Discard")
	}
	c.Send(subscriptions.Message{Name: "y"}) // no panic, no block
	c.Discard()                              // idempotent
	if !c.IsDiscarded() {
		t.Fatal("not discarded")
	}
}

func TestPublishDropsWhenBehind(t *testing.T) {
	// A Live whose worker is not running: the hand-off queue fills up.
	l := &Live{in: make(chan event.Event, 2)}
	before := counter(t)
	done := make(chan struct{})
	go func() {
		for range 5 {
			l.Publish(event.Event{SiteID: "s", Type: event.Pageview})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked")
	}
	if d := counter(t) - before; d != 3 {
		t.Fatalf("dropped %v hits, want 3", d)
	}
}

func counter(t *testing.T) float64 {
	var m dto.Metric
	if err := metrics.LiveDropped.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.Counter.GetValue()
}

func TestParseTopic(t *testing.T) {
	cases := []struct {
		sub  string
		site string
		live bool
	}{
		{"analytics/live/abc", "abc", true},
		{`analytics/live/abc?options={"query":{}}`, "abc", true},
		{"analytics/live/", "", true},
		{"analytics/live/a/b", "", true},
		{"analytics/livex", "", false},
		{"sites/abc", "", false},
		{"sites", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.sub, func(t *testing.T) {
			site, live := parseTopic(tc.sub)
			if site != tc.site || live != tc.live {
				t.Fatalf("parseTopic(%q) = %q, %v; want %q, %v", tc.sub, site, live, tc.site, tc.live)
			}
		})
	}
}

func TestVisitorKey(t *testing.T) {
	k := VisitorKey("site1", 42)
	if len(k) != 16 || strings.Trim(k, "0123456789abcdef") != "" {
		t.Fatalf("key %q: want 16 hex digits", k)
	}
	if VisitorKey("site1", 42) != k {
		t.Fatal("not stable")
	}
	if VisitorKey("site2", 42) == k || VisitorKey("site1", 43) == k {
		t.Fatal("collides across sites or visitors")
	}
	// Pinned: every instance and release must derive the same key.
	if k != "6a0a3d294a3a811d" {
		t.Fatalf("key %q changed", k)
	}
}

func TestChangesCount(t *testing.T) {
	for data, want := range map[string]bool{
		`{"type":"arrival","site":"s"}`:  true,
		`{"type":"leave","site":"s"}`:    true,
		`{"type":"pageview","site":"s"}`: false,
		`{"type":"event"}`:               false,
		``:                               false,
	} {
		if got := changesCount([]byte(data)); got != want {
			t.Errorf("changesCount(%s) = %v, want %v", data, got, want)
		}
	}
}
