package sqlitestore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// BenchmarkInsertDay measures rows/s for a day of realistic visits in
// 10,000-event batches (see storetest.BenchInsert).
func BenchmarkInsertDay(b *testing.B) {
	storetest.BenchInsert(b, openStore(b), 10000)
}

// BenchmarkInsertHour measures the flusher's batches (5,000 events, a
// second at 5,000 hits/s) into one UTC hour at the density of 1.3M events a
// day (about 54,000 events, 11,300 visits in the hour), so each batch keeps
// up the rollups of an hour as full as they get: ms/batch over the hour's
// last half, when its rows are fullest.
func BenchmarkInsertHour(b *testing.B) {
	from := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := storetest.Options{Seed: 5, Sites: []storetest.Site{{ID: "hour", Timezone: "UTC"}},
		Sessions: 1300000 * 10 / 48 / 24, From: from, To: from.Add(time.Hour)}
	ctx := context.Background()
	for b.Loop() {
		s := openStore(b)
		var took []time.Duration
		_, err := storetest.Stream(opts, 5000, func(evs []event.Event) error {
			start := time.Now()
			err := s.Insert(ctx, "", evs)
			took = append(took, time.Since(start))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		var sum time.Duration
		late := took[len(took)/2:]
		for _, d := range late {
			sum += d
		}
		b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(late)), "ms/batch")
		b.ReportMetric(float64(slices.Max(late).Microseconds())/1000, "max-ms/batch")
	}
}
