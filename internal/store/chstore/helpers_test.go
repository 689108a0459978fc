package chstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// openTest opens a Store on a fresh database, closed at cleanup.
func openTest(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := Open(context.Background(), testutil.ClickHouseDSN(tb), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// makeEvents returns n events from start on, one per 10ms, across two sites,
// with every field set on some of them.
func makeEvents(n int, start time.Time) []event.Event {
	types := []string{event.Pageview, event.Custom, event.Ping, event.Leave}
	events := make([]event.Event, n)
	for i := range events {
		ev := event.Event{
			ID:        randomHex(16),
			Time:      start.Add(time.Duration(i) * 10 * time.Millisecond).UTC(),
			SiteID:    fmt.Sprintf("site%d", i%2),
			Type:      types[i%len(types)],
			Hostname:  "example.com",
			Pathname:  fmt.Sprintf("/page/%d", i%50),
			VisitorID: uint64(i%97) + 1<<62,
			SessionID: uint64(i%31) + 1,
			Entry:     i%31 == 0,
		}
		if i%3 == 0 {
			ev.Title = "Grüße — 東京 🚀 \"quoted\" 'single' \\ back\nslash"
			ev.ReferrerHost = "news.ycombinator.com"
			ev.Channel = "social"
			ev.UTMSource, ev.UTMMedium, ev.UTMCampaign = "hn", "social", "launch"
			ev.UTMTerm, ev.UTMContent = "analytics", "top"
			ev.Country, ev.Region, ev.City = "JP", "Tōkyō", "東京"
			ev.Latitude, ev.Longitude = 35.689487, 139.691706
			ev.Device, ev.Browser, ev.OS = "mobile", "Safari", "iOS"
			ev.ScreenWidth = 390
		}
		if ev.Type == event.Ping || ev.Type == event.Leave {
			ev.Engaged, ev.Scroll = 15000+i, i%101
		}
		if ev.Type == event.Custom {
			ev.Name = "signup"
			ev.Props = map[string]string{"plan": "pro", "größe": "XL", "empty": "", "emoji": "🎉"}
		}
		events[i] = ev
	}
	return events
}
