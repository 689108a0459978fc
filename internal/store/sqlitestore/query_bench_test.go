package sqlitestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

func BenchmarkQueries(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("PL_BENCH_ROWS"))
	if rows <= 0 {
		b.Skip("set PL_BENCH_ROWS (e.g. 1000000) to benchmark the analytics queries")
	}
	opts := storetest.BenchOptions(rows)
	// PL_BENCH_KEEP keeps the database file for the next run.
	path := filepath.Join(b.TempDir(), "analytics.db")
	if os.Getenv("PL_BENCH_KEEP") != "" {
		path = filepath.Join(os.TempDir(), fmt.Sprintf("pl_bench_sqlite_%d.db", rows))
	}
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if count(b, s.db) == 0 {
		start := time.Now()
		_, err := storetest.Stream(opts, 10000, func(evs []event.Event) error {
			return s.Insert(context.Background(), "", evs)
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d rows in %s", count(b, s.db), time.Since(start))
	}
	q := s
	loc, _ := time.LoadLocation(opts.Sites[0].Timezone)
	query := store.Query{SiteID: opts.Sites[0].ID, From: opts.From, To: opts.To, Location: loc}
	ctx := context.Background()
	b.Run("overview", func(b *testing.B) {
		for b.Loop() {
			if _, err := q.Overview(ctx, query); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("timeseries", func(b *testing.B) {
		for b.Loop() {
			if _, err := q.Timeseries(ctx, query, store.IntervalDay); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, dim := range []store.Dimension{store.DimPage, store.DimCountry, store.DimEntryPage} {
		b.Run("breakdown-"+string(dim), func(b *testing.B) {
			for b.Loop() {
				if _, err := q.Breakdown(ctx, query, dim, 10, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
