package flush_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/flush"
	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlitestore"
)

// BenchmarkPipeline measures events/s from a filled local queue through
// the flusher into SQLite, with the default batch size.
func BenchmarkPipeline(b *testing.B) {
	dir := b.TempDir()
	q, err := localq.Open(filepath.Join(dir, "queue"), localq.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	s, err := sqlitestore.Open(filepath.Join(dir, "analytics.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rows, _ := sql.Open("sqlite", filepath.Join(dir, "analytics.db"))
	defer rows.Close()

	evs := testEvents("bench", b.N)
	for i := 0; i < len(evs); i += 1000 {
		if err := q.Enqueue(context.Background(), evs[i:min(i+1000, len(evs))]...); err != nil {
			b.Fatal(err)
		}
	}

	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- flush.New(q, s, flush.Options{Interval: 10 * time.Millisecond}).Run(ctx) }()
	for {
		st, _ := q.Stats(context.Background())
		if st.Length == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	var n int
	rows.QueryRow("SELECT count(*) FROM events").Scan(&n)
	if n != b.N {
		b.Fatalf("%d rows, want %d", n, b.N)
	}
}
