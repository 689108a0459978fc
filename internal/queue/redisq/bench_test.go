package redisq

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
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

// ingestRate is the ingest target's rate, hits a second.
const ingestRate = 5000

// BenchmarkEnqueueAt5000 is the latency of Enqueue alone at the ingest
// target's rate: one event a call, calls from goroutines of their own.
func BenchmarkEnqueueAt5000(b *testing.B) {
	c := testClient(b)
	q := newQueue(b, c, testOptions(b, c))
	events := benchEvents()
	ctx := context.Background()

	testutil.AtRate(b, ingestRate, func(i int) {
		if err := q.Enqueue(ctx, events[i%len(events)]); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkBareXAddAt5000 is BenchmarkEnqueueAt5000's baseline: one XADD of
// its own a call, on go-redis's pool.
func BenchmarkBareXAddAt5000(b *testing.B) {
	c := testClient(b)
	opts := testOptions(b, c)
	events := benchEvents()
	ctx := context.Background()

	testutil.AtRate(b, ingestRate, func(i int) {
		data, err := appendFramed(nil, &events[i%len(events)])
		if err == nil {
			err = c.XAdd(ctx, &redis.XAddArgs{Stream: opts.Stream, Values: []any{fieldBatch, data}}).Err()
		}
		if err != nil {
			b.Error(err)
		}
	})
}

// benchEvents returns pageviews filled in as enrichment fills them.
func benchEvents() []event.Event {
	events := make([]event.Event, 1000)
	for i := range events {
		ev := testEvent(i)
		ev.Hostname, ev.Title, ev.ReferrerHost, ev.Channel = "example.com", "Docs", "www.google.com", "search"
		ev.Region, ev.City, ev.Latitude, ev.Longitude = "BE", "Berlin", 52.52, 13.4
		ev.Device, ev.Browser, ev.OS, ev.ScreenWidth = "desktop", "Firefox", "Linux", 1920
		events[i] = ev
	}
	return events
}

// BenchmarkRead measures the flusher's side, reading and acknowledging
// batches of 1000. cpu-ns/op is this process' CPU time per event (wall time
// is mostly Redis').
func BenchmarkRead(b *testing.B) {
	ev := benchEvents()[1]
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
