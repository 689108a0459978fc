package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// BenchInsert streams a day of realistic visits (about 290,000 events,
// sessions of a few events each, spread over consecutive batches as the
// flusher would write them) into w in batches of size and reports rows/s.
func BenchInsert(b *testing.B, w store.Writer, size int) {
	ctx := context.Background()
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{Seed: 7, Sites: []Site{{ID: "insert", Timezone: "UTC"}}, Sessions: 60000, From: from, To: from.AddDate(0, 0, 1)}
	for b.Loop() {
		var rows int
		var took time.Duration
		_, err := Stream(opts, size, func(evs []event.Event) error {
			start := time.Now()
			err := w.Insert(ctx, strconv.Itoa(rows), evs)
			took += time.Since(start)
			rows += len(evs)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
	}
}
