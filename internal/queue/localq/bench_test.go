package localq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
)

// BenchmarkEnqueue measures one-event Enqueue calls from parallel callers,
// as the ingest route makes them. Group commit shares each write (and fsync)
// among the callers waiting at that moment.
func BenchmarkEnqueue(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		for _, par := range []int{1, 16} {
			b.Run(fmt.Sprintf("fsync=%v/callers=%dxGOMAXPROCS", fsync, par), func(b *testing.B) {
				q := open(b, b.TempDir(), localq.Options{Fsync: fsync})
				ev := testEvent("0123456789abcdef0123456789abcdef")
				ctx := context.Background()
				b.SetParallelism(par)
				b.ReportAllocs()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := q.Enqueue(ctx, ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkRead measures the consumer: read and ack batches of 1000.
func BenchmarkRead(b *testing.B) {
	q := open(b, b.TempDir(), localq.Options{})
	ev := testEvent("0123456789abcdef0123456789abcdef")
	ctx := context.Background()
	for range b.N/1000 + 1 {
		evs := events("r", 1000)
		for i := range evs {
			evs[i] = ev
		}
		if err := q.Enqueue(ctx, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		msgs, err := q.Read(ctx, 1000, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Ack(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		n += len(msgs)
	}
}
