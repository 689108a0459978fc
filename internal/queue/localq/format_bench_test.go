package localq

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// BenchmarkRead measures the consumer: read and ack batches of 1000.
func BenchmarkRead(b *testing.B) {
	ev := event.Event{
		ID: "0123456789abcdef0123456789abcdef", Time: time.Now().UTC().Truncate(time.Millisecond),
		SiteID: "site1", Type: event.Pageview, Hostname: "example.com", Pathname: "/docs/getting-started",
		Title: "Docs", ReferrerHost: "www.google.com", Channel: "search", Country: "DE", Region: "BE",
		City: "Berlin", Latitude: 52.52, Longitude: 13.4, Device: "desktop", Browser: "Firefox", OS: "Linux",
		ScreenWidth: 1920, VisitorID: 42, SessionID: 43, Props: map[string]string{"plan": "pro"},
	}
	payload, err := ev.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	q, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	q.Close()
	var recs []byte
	for range 1000 {
		recs = appendRecord(recs, payload)
	}
	f, err := os.OpenFile(segmentPath(dir, 1), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N/1000 + 1 {
		if _, err := f.Write(recs); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	if q, err = Open(dir, Options{}); err != nil {
		b.Fatal(err)
	}
	defer q.Close()

	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		msgs, err := q.Read(ctx, 1000, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Ack(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		n += len(msgs)
	}
	b.ReportMetric(float64(len(payload)), "bytes/event")
}
