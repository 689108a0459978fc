package chstore

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore/schema"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// The rollups answer nothing before they are built, then what
// store.Query.Rollable allows.
func TestFromRollups(t *testing.T) {
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	q := store.Query{SiteID: "s", From: from, To: from.AddDate(0, 0, 30), Location: time.UTC}
	s := &Store{}
	if s.fromRollups(q) {
		t.Error("from the rollups before they are built")
	}
	if s.rollups.Store(true); !s.fromRollups(q) {
		t.Error("not from the rollups once built")
	}
}

// TestRollupRedelivery loads KnownEvents in order, answers CheckKnown from
// the rollups exactly, and again after the batch and its halves are
// delivered again: a redelivered batch adds nothing to them.
func TestRollupRedelivery(t *testing.T) {
	s := openTest(t, Options{})
	if !s.rollups.Load() {
		t.Fatal("a new store does not answer from its rollups")
	}
	evs := storetest.KnownEvents()
	load(t, s, evs)
	storetest.CheckKnown(t, s)
	before := rollupRows(t, s)
	storetest.Redeliver(t, s, evs)
	if after := rollupRows(t, s); after != before {
		t.Errorf("rollup_hours has %d rows after the redelivery, %d before", after, before)
	}
	checkRollups(t, s)
	storetest.CheckKnown(t, s)
}

func rollupRows(t *testing.T, s *Store) uint64 {
	t.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), "SELECT count() FROM rollup_hours").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkRollups fails unless rollup_hours holds, per key, the sums that its
// views make of the visits and visit_values rows now stored: each row
// counted once, none missing.
func checkRollups(t *testing.T, s *Store) {
	t.Helper()
	sums := "sum(visits_sum), sum(pageviews_sum), sum(events_sum), sum(bounces_sum), sum(duration_sum), " +
		"sum(engaged_sum), sum(depth_sum), sum(reported_sum)"
	read := func(from string) map[string][8]int64 {
		out := map[string][8]int64{}
		each(t, s, "SELECT site_id, dim, value, toString(hour), "+sums+" FROM "+from+" GROUP BY site_id, dim, value, hour",
			func(r driver.Rows) error {
				var site, dim, value, hour string
				var v [8]int64
				if err := r.Scan(&site, &dim, &value, &hour, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]); err != nil {
					return err
				}
				if v != [8]int64{} {
					out[site+"|"+dim+"|"+value+"|"+hour] = v
				}
				return nil
			})
		return out
	}
	got := read("rollup_hours")
	want := map[string][8]int64{}
	for _, r := range schema.Rollups {
		maps.Copy(want, read("("+r.Query("1 = 1")+")"))
	}
	if len(want) == 0 {
		t.Fatal("no rollups to check")
	}
	if !maps.Equal(got, want) {
		n := 0
		for k, w := range want {
			if got[k] != w && n < 5 {
				t.Errorf("rollup %s: %v, its rows make %v", k, got[k], w)
				n++
			}
		}
		t.Fatalf("rollup_hours: %d keys, its rows make %d", len(got), len(want))
	}
}
