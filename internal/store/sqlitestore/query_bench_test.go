package sqlitestore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// BenchmarkQueries times the dashboard's views over PL_BENCH_ROWS events of
// one site spread over PL_BENCH_DAYS days (see storetest.BenchViews; the
// target: 1 million events, each view under 300 ms). PL_BENCH_KEEP=1 keeps
// the loaded file in the temp directory for the next run.
//
//	PL_BENCH_ROWS=1000000 go test -run '^$' -bench Queries -benchtime 1x ./internal/store/sqlitestore
func BenchmarkQueries(b *testing.B) {
	rows, days := storetest.BenchSize(b)
	path := filepath.Join(b.TempDir(), "analytics.db")
	if os.Getenv("PL_BENCH_KEEP") != "" {
		path = filepath.Join(os.TempDir(), fmt.Sprintf("pl_bench_sqlite_%d_%dd.db", rows, days))
	}
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchViews(b, s, rows, days)
}
