package chstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// BenchmarkQueries times the dashboard's views over PL_BENCH_ROWS events of
// one site spread over PL_BENCH_DAYS days (see storetest.BenchViews; the
// target: 10 million events, each view under 300 ms). PL_BENCH_KEEP=1 keeps
// the loaded database pl_bench_ROWS_DAYSd for the next run.
//
//	PL_BENCH_ROWS=10000000 go test -run '^$' -bench Queries -benchtime 1x ./internal/store/chstore
func BenchmarkQueries(b *testing.B) {
	rows, days := storetest.BenchSize(b)
	dsn := testutil.ClickHouseDSN(b)
	if os.Getenv("PL_BENCH_KEEP") != "" {
		u, err := url.Parse(testutil.ClickHouseURL(b))
		if err != nil {
			b.Fatal(err)
		}
		u.Path = fmt.Sprintf("/pl_bench_%d_%dd", rows, days)
		dsn = u.String()
	}
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchViews(b, s, rows, days)
}
