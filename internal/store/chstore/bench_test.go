package chstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// BenchmarkInsert measures Insert end to end (stored-id check and one native
// block) at flusher batch sizes, as rows per second. Each batch covers one
// second of fresh events, as a live flusher's would.
func BenchmarkInsert(b *testing.B) {
	for _, size := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openTest(b, Options{})
			start := time.Now().Add(-time.Hour)
			batches := make([][]event.Event, 4)
			for i := range batches {
				batches[i] = makeEvents(size, start)
			}
			n := 0
			for i := 0; b.Loop(); i++ {
				events := batches[i%len(batches)]
				b.StopTimer()
				renew(events, start.Add(time.Duration(i)*time.Second))
				b.StartTimer()
				if err := s.Insert(context.Background(), fmt.Sprint(i), events); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(size*n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkStoredIDs measures the stored-id check alone for a 10,000-event
// batch in a table of a million rows: for a first delivery (none stored)
// and for a redelivery (all stored, the worst case).
func BenchmarkStoredIDs(b *testing.B) {
	const size, fill = 10000, 1000000
	s := openTest(b, Options{})
	start := time.Now().Add(-24 * time.Hour)
	var last []event.Event
	for i := 0; i < fill/size; i++ {
		last = makeEvents(size, start.Add(time.Duration(i)*100*time.Second))
		if err := s.Insert(context.Background(), fmt.Sprint(i), last); err != nil {
			b.Fatal(err)
		}
	}
	fresh := makeEvents(size, start.Add(time.Duration(fill/size)*100*time.Second))

	for _, sc := range []struct {
		name   string
		events []event.Event
		stored int
	}{
		{"first delivery", fresh, 0},
		{"redelivery", last, size},
	} {
		b.Run(sc.name, func(b *testing.B) {
			for b.Loop() {
				stored, err := s.storedIDs(context.Background(), sc.events)
				if err != nil {
					b.Fatal(err)
				}
				if len(stored) != sc.stored {
					b.Fatalf("%d stored, want %d", len(stored), sc.stored)
				}
			}
		})
	}
}

// renew gives events new ids and moves them to the second from start on.
func renew(events []event.Event, start time.Time) {
	step := time.Second / time.Duration(len(events))
	for i := range events {
		events[i].ID = randomHex(16)
		events[i].Time = start.Add(time.Duration(i) * step)
	}
}
