package flush_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/flush"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// BenchmarkDrain measures the end-to-end drain of a backlog: b.N events
// already in a Redis stream, read, inserted into a real ClickHouse database
// and acknowledged through a Flusher with the default batch size. It reports
// rows/s from the start of Run until the queue is empty, and the test
// process's CPU time per row over the same span (on a shared machine the
// rate follows the load, the CPU per row much less; Redis's and
// ClickHouse's CPU are not included), and the process's peak RSS during the
// drain (Linux). Filling the stream is not timed.
//
//	go test -run '^$' -bench Drain -benchtime 100000x ./internal/flush
func BenchmarkDrain(b *testing.B) {
	rdb := testutil.Redis(b)
	dsn := testutil.ClickHouseDSN(b)
	s, err := chstore.Open(context.Background(), dsn, chstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	stream := testutil.RedisPrefix(b, "pl:test:drain:")
	q, err := redisq.New(rdb, redisq.Options{Stream: stream})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	evs := drainEvents(b.N, time.Now().Add(-time.Hour))
	// Entries of 8 events, about what the app's group commit writes
	// under load: a consumer's first read of entries of unknown size
	// takes many at once.
	const perEntry = 8
	for i := 0; i < len(evs); i += perEntry {
		if err := q.Enqueue(context.Background(), evs[i:min(i+perEntry, len(evs))]...); err != nil {
			b.Fatal(err)
		}
	}
	evs = nil
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	b.ResetTimer()
	start, cpu := time.Now(), processCPU(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	f := flush.New(q, s, flush.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	elapsed, cpu := time.Since(start), processCPU(b)-cpu
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/row")
	if resetPeakRSS {
		b.ReportMetric(peakRSS(b), "peak-rss-MB")
	}

	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if rows := countClickHouse(b, dsn); rows != uint64(b.N) {
		b.Fatalf("%d rows stored, want %d", rows, b.N)
	}
}

func countClickHouse(b *testing.B, dsn string) uint64 {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var rows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM events").Scan(&rows); err != nil {
		b.Fatal(err)
	}
	return rows
}

// peakRSS returns the process's peak resident set size (VmHWM) in MB,
// since it was last reset through /proc/self/clear_refs.
func peakRSS(b *testing.B) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// processCPU returns the user and system time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drainEvents returns n events of visits as loadgen sends them: 32 visits
// at a time, each of six events a millisecond apart (pageviews, a custom
// event with props, a ping and a leave), a third with the full set of
// attributes an enriched pageview has.
func drainEvents(n int, start time.Time) []event.Event {
	const concurrent, perVisit = 32, 6
	types := [perVisit]string{event.Pageview, event.Custom, event.Pageview, event.Ping, event.Pageview, event.Leave}
	evs := make([]event.Event, n)
	for i := range evs {
		pos := i / concurrent % perVisit
		visit := i/(concurrent*perVisit)*concurrent + i%concurrent
		ev := event.Event{
			ID:        fmt.Sprintf("%016x%016x", start.UnixNano(), i),
			Time:      start.Add(time.Duration(i) * time.Millisecond).UTC(),
			SiteID:    fmt.Sprintf("site%d", visit%3),
			Type:      types[pos],
			Hostname:  "example.com",
			Pathname:  fmt.Sprintf("/blog/post-%d", (visit+pos)%200),
			VisitorID: uint64(visit%997) + 1<<40,
			SessionID: uint64(visit) + 1<<41,
			Entry:     pos == 0,
		}
		if visit%3 == 0 {
			ev.Title = "A post about privacy-friendly analytics"
			ev.ReferrerHost = "news.ycombinator.com"
			ev.Channel = "social"
			ev.UTMSource, ev.UTMMedium, ev.UTMCampaign = "hn", "social", "launch"
			ev.Country, ev.Region, ev.City = "DE", "Berlin", "Berlin"
			ev.Latitude, ev.Longitude = 52.52, 13.405
			ev.Device, ev.Browser, ev.OS = "desktop", "Firefox", "Linux"
			ev.ScreenWidth = 1920
		}
		if ev.Type == event.Custom {
			ev.Name = "signup"
			ev.Props = map[string]string{"plan": "pro", "source": "footer"}
		}
		evs[i] = ev
	}
	return evs
}
