package redisq

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// benchParallelism approximates concurrent ingest handlers: goroutines per
// GOMAXPROCS in RunParallel.
const benchParallelism = 64

// BenchmarkEnqueueParallel measures ingest throughput through the queue's
// group commit: many goroutines each enqueue one event per operation.
func BenchmarkEnqueueParallel(b *testing.B) {
	c := testClient(b)
	q := newQueue(b, c, testOptions(b, c))
	ev := testEvent(1)
	ctx := context.Background()

	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := q.Enqueue(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBareXAddParallel is the baseline the queue must match or beat: a
// bare handler that decodes a hit and does one XADD of its own per hit.
func BenchmarkBareXAddParallel(b *testing.B) {
	c := testClient(b)
	opts := testOptions(b, c)
	body, err := json.Marshal(testEvent(1))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var ev event.Event
			if err := json.Unmarshal(body, &ev); err != nil {
				b.Error(err)
				return
			}
			payload, _ := json.Marshal(&ev)
			err := c.XAdd(ctx, &redis.XAddArgs{
				Stream: opts.Stream,
				Values: []string{fieldEvent, string(payload)},
			}).Err()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
