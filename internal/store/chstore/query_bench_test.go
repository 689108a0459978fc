package chstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// BenchmarkQueries times the dashboard's queries over PL_BENCH_ROWS events
// of one site spread over 30 days (the target: 10 million, each query under
// 300 ms). PL_BENCH_KEEP=1 keeps the loaded database pl_bench_ROWS for the
// next run.
func BenchmarkQueries(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("PL_BENCH_ROWS"))
	if rows <= 0 {
		b.Skip("set PL_BENCH_ROWS (e.g. 10000000) to benchmark the analytics queries")
	}
	dsn := testutil.ClickHouseDSN(b)
	if os.Getenv("PL_BENCH_KEEP") != "" {
		u, err := url.Parse(testutil.ClickHouseURL(b))
		if err != nil {
			b.Fatal(err)
		}
		u.Path = fmt.Sprintf("/pl_bench_%d", rows)
		dsn = u.String()
	}
	ctx := context.Background()
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchQueries(b, s, rows)
}

// benchQueries loads the benchmark dataset into an empty store and times
// each query of a dashboard's first view.
func benchQueries(b *testing.B, s store.Store, rows int) {
	ctx := context.Background()
	opts := storetest.BenchOptions(rows)
	loc, err := time.LoadLocation(opts.Sites[0].Timezone)
	if err != nil {
		b.Fatal(err)
	}
	query := store.Query{SiteID: opts.Sites[0].ID, From: opts.From, To: opts.To, Location: loc}
	if ov, err := s.Overview(ctx, query); err != nil {
		b.Fatal(err)
	} else if ov.Visits == 0 {
		start, n := time.Now(), 0
		_, err := storetest.Stream(opts, 100000, func(evs []event.Event) error {
			n++
			return s.Insert(ctx, strconv.Itoa(n), evs)
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d events in %s", rows, time.Since(start).Round(time.Second))
	}
	for _, bq := range storetest.BenchQueries(query) {
		b.Run(bq.Name, func(b *testing.B) {
			for b.Loop() {
				if err := bq.Run(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
