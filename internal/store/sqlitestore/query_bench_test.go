package sqlitestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// BenchmarkQueries times the dashboard's queries over PL_BENCH_ROWS events
// of one site spread over 30 days (the target: 1 million, each query under
// 300 ms). PL_BENCH_KEEP=1 keeps the loaded file in the temp directory for
// the next run.
func BenchmarkQueries(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("PL_BENCH_ROWS"))
	if rows <= 0 {
		b.Skip("set PL_BENCH_ROWS (e.g. 1000000) to benchmark the analytics queries")
	}
	path := filepath.Join(b.TempDir(), "analytics.db")
	if os.Getenv("PL_BENCH_KEEP") != "" {
		path = filepath.Join(os.TempDir(), fmt.Sprintf("pl_bench_sqlite_%d.db", rows))
	}
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	opts := storetest.BenchOptions(rows)
	loc, err := time.LoadLocation(opts.Sites[0].Timezone)
	if err != nil {
		b.Fatal(err)
	}
	query := store.Query{SiteID: opts.Sites[0].ID, From: opts.From, To: opts.To, Location: loc}
	if count(b, s.db) == 0 {
		start := time.Now()
		if _, err := storetest.Stream(opts, 10000, func(evs []event.Event) error {
			return s.Insert(ctx, "", evs)
		}); err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d events in %s", count(b, s.db), time.Since(start).Round(time.Second))
	}
	for _, bq := range storetest.BenchQueries(query) {
		b.Run(bq.Name, func(b *testing.B) {
			// SQLite runs in this process: its CPU time per query is a
			// figure that other load on the machine does not inflate.
			start := cpuTime()
			for b.Loop() {
				if err := bq.Run(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
