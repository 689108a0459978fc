package redisq

import (
	"context"
	"encoding/json"
	"testing"
	"time"

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

// BenchmarkRead measures the flusher's side, reading and acknowledging
// batches of 1000. cpu-ns/op is this process' CPU time per event (wall time
// is mostly Redis').
func BenchmarkRead(b *testing.B) {
	ev := testEvent(1)
	ev.Hostname, ev.Title, ev.ReferrerHost, ev.Channel = "example.com", "Docs", "www.google.com", "search"
	ev.Region, ev.City, ev.Latitude, ev.Longitude = "BE", "Berlin", 52.52, 13.4
	ev.Device, ev.Browser, ev.OS, ev.ScreenWidth = "desktop", "Firefox", "Linux", 1920
	c := testClient(b)
	q := newQueue(b, c, testOptions(b, c))
	ctx := context.Background()
	batch := make([]event.Event, 1000)
	for i := range batch {
		batch[i] = ev
	}
	for n := 0; n < b.N; n += 1000 {
		if err := q.Enqueue(ctx, batch[:min(1000, b.N-n)]...); err != nil {
			b.Fatal(err)
		}
	}

	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for n := 0; n < b.N; {
		msgs, err := q.Read(ctx, 1000, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Ack(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		n += len(msgs)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}
