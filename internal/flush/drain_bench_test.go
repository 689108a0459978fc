package flush_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/flush"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// BenchmarkDrain measures the end-to-end drain of a backlog: DRAIN_EVENTS
// (default 100,000) events already in a Redis stream, read, inserted into a
// real ClickHouse database and acknowledged through a Flusher, as rows/s from
// the start of Run until the queue is empty, and the test process's CPU time
// per row over the same span. Filling the stream is not timed.
func BenchmarkDrain(b *testing.B) {
	n := 100000
	if s := os.Getenv("DRAIN_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("DRAIN_EVENTS: %v", err)
		}
	}
	rdb := testutil.Redis(b)
	s, err := chstore.Open(context.Background(), testutil.ClickHouseDSN(b), chstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	for _, size := range []int{10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var elapsed, cpu time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				stream := testutil.Unique("pl:test:drain:")
				q, err := redisq.New(rdb, redisq.Options{Stream: stream})
				if err != nil {
					b.Fatal(err)
				}
				evs := drainEvents(n, time.Now().Add(-time.Hour))
				for j := 0; j < n; j += 1000 {
					if err := q.Enqueue(context.Background(), evs[j:min(j+1000, n)]...); err != nil {
						b.Fatal(err)
					}
				}
				evs = nil
				b.StartTimer()

				start, cpu0 := time.Now(), processCPU(b)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				f := flush.New(q, s, flush.Options{BatchSize: size, Logger: quiet})
				go func() { done <- f.Run(ctx) }()
				for {
					st, err := q.Stats(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					if st.Length == 0 {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				elapsed += time.Since(start)
				cpu += processCPU(b) - cpu0

				b.StopTimer()
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				q.Close()
				rdb.Del(context.Background(), stream, stream+":dead")
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-µs/row")
		})
	}
}

// processCPU returns the user and system time of this process so far. On
// the shared 2-core machines the wall-clock rate follows the load; the
// flusher's CPU per row does not (Redis and ClickHouse are not included).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drainEvents returns n events of several sessions, a third with the full
// set of attributes an enriched pageview has, one in four a custom event
// with props.
func drainEvents(n int, start time.Time) []event.Event {
	types := []string{event.TypePageview, event.TypeEvent, event.TypePing, event.TypeLeave}
	evs := make([]event.Event, n)
	for i := range evs {
		ev := event.Event{
			ID:        fmt.Sprintf("%016x%016x", start.UnixNano(), i),
			Time:      start.Add(time.Duration(i) * time.Millisecond).UTC(),
			SiteID:    fmt.Sprintf("site%d", i%3),
			Type:      types[i%len(types)],
			Hostname:  "example.com",
			Pathname:  fmt.Sprintf("/blog/post-%d", i%200),
			VisitorID: uint64(i%997) + 1<<40,
			SessionID: uint64(i%331) + 1<<41,
			Entry:     i%331 == 0,
		}
		if i%3 == 0 {
			ev.Title = "A post about privacy-friendly analytics"
			ev.ReferrerHost = "news.ycombinator.com"
			ev.Channel = "social"
			ev.UTMSource, ev.UTMMedium, ev.UTMCampaign = "hn", "social", "launch"
			ev.Country, ev.Region, ev.City = "DE", "Berlin", "Berlin"
			ev.Latitude, ev.Longitude = 52.52, 13.405
			ev.Device, ev.Browser, ev.OS = "desktop", "Firefox", "Linux"
			ev.ScreenWidth = 1920
		}
		if ev.Type == event.TypeEvent {
			ev.Name = "signup"
			ev.Props = map[string]string{"plan": "pro", "source": "footer"}
		}
		evs[i] = ev
	}
	return evs
}
