package chstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

func BenchmarkQueries(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("PL_BENCH_ROWS"))
	if rows <= 0 {
		b.Skip("set PL_BENCH_ROWS (e.g. 10000000) to benchmark the analytics queries")
	}
	opts := storetest.BenchOptions(rows)
	dsn := os.Getenv("CLICKHOUSE_URL")
	if dsn == "" {
		b.Skip("CLICKHOUSE_URL is not set")
	}
	chOpts, _ := clickhouse.ParseDSN(dsn)
	chOpts.Auth.Database = "default"
	admin, err := clickhouse.Open(chOpts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	db := fmt.Sprintf("pl_bench_%d", rows)
	admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db)
	chOpts.Auth.Database = db
	conn, err := clickhouse.Open(chOpts)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); n == 0 {
		createSchema(b, conn)
		start := time.Now()
		_, err := storetest.Stream(opts, 200000, func(evs []event.Event) error {
			insertEvents(b, conn, evs)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d rows in %s", rows, time.Since(start))
	}
	q := newQuerier(conn)
	loc, _ := time.LoadLocation(opts.Sites[0].Timezone)
	query := store.Query{SiteID: opts.Sites[0].ID, From: opts.From, To: opts.To, Location: loc}
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
