package storetest

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// BenchSize reads the benchmark's size from the environment: PL_BENCH_ROWS
// events (required) over PL_BENCH_DAYS days (default 30).
func BenchSize(b *testing.B) (rows, days int) {
	rows, _ = strconv.Atoi(os.Getenv("PL_BENCH_ROWS"))
	if rows <= 0 {
		b.Skip("set PL_BENCH_ROWS (e.g. 1000000) to benchmark the dashboard views")
	}
	days, _ = strconv.Atoi(os.Getenv("PL_BENCH_DAYS"))
	if days <= 0 {
		days = 30
	}
	return rows, days
}

// BenchViews loads the benchmark dataset into s when s holds none of it,
// then times each dashboard view three times and reports the median as
// ms/view. A store still building its visits is waited for. Run with
// -benchtime=1x: each sub-benchmark times its own three runs.
func BenchViews(b *testing.B, s store.Store, rows, days int) {
	ctx := context.Background()
	if bf, ok := s.(interface{ Backfilled() <-chan struct{} }); ok {
		start := time.Now()
		<-bf.Backfilled()
		if took := time.Since(start); took > time.Second {
			b.Logf("waited %s for the visits backfill", took.Round(time.Second))
		}
	}
	opts := BenchOptions(rows, days)
	loc, err := time.LoadLocation(opts.Sites[0].Timezone)
	if err != nil {
		b.Fatal(err)
	}
	query := store.Query{SiteID: opts.Sites[0].ID, From: opts.From, To: opts.To, Location: loc}
	if ov, err := s.Overview(ctx, query); err != nil {
		b.Fatal(err)
	} else if ov.Visits == 0 {
		start, n := time.Now(), 0
		_, err := Stream(opts, 50000, func(evs []event.Event) error {
			n++
			return s.Insert(ctx, strconv.Itoa(n), evs)
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d events in %s", rows, time.Since(start).Round(time.Second))
	}
	for _, bq := range BenchQueries(query) {
		b.Run(bq.Name, func(b *testing.B) {
			for b.Loop() {
				var took []time.Duration
				for range 3 {
					start := time.Now()
					if err := bq.Run(ctx, s); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(start))
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[1].Microseconds())/1000, "ms/view")
			}
		})
	}
}
