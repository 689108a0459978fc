package sqlitestore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkInsert measures rows per second for flusher-sized batches.
func BenchmarkInsert(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openStore(b)
			ctx := context.Background()
			b.ReportAllocs()
			var rows int
			var elapsed time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				evs := testEvents(fmt.Sprintf("b%06d-", i), size, time.Now())
				b.StartTimer()
				start := time.Now()
				if err := s.Insert(ctx, fmt.Sprint(i), evs); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				rows += size
			}
			b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
		})
	}
}
