package sqlitestore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// load inserts evs in flusher-sized batches.
func load(t testing.TB, s *Store, evs []event.Event) {
	t.Helper()
	for start := 0; start < len(evs); start += 10000 {
		if err := s.Insert(context.Background(), "", evs[start:min(start+10000, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueriesKnownAnswers checks the answers worked out by hand.
func TestQueriesKnownAnswers(t *testing.T) {
	s := openStore(t)
	load(t, s, storetest.KnownEvents())
	storetest.CheckKnown(t, s)
}

// TestQueriesMatchReference runs the parity matrix (see storetest.Check)
// on a real SQLite file.
func TestQueriesMatchReference(t *testing.T) {
	opts := storetest.DefaultOptions()
	ds := storetest.Generate(opts)
	s := openStore(t)
	load(t, s, ds.Events)
	storetest.Check(t, s, opts, ds, false)
}

// TestVisitsRedelivery: visits rebuilt as their events arrive out of order
// and again do not count twice (see storetest.CheckRedelivery).
func TestVisitsRedelivery(t *testing.T) {
	s := openStore(t)
	storetest.CheckRedelivery(t, s)
	checkRollupsMatchVisits(t, s)
}

// TestRollupRedelivery loads KnownEvents, answers CheckKnown from the
// rollups, and again after the batch and its halves are delivered again: a
// redelivered batch changes nothing in them.
func TestRollupRedelivery(t *testing.T) {
	s := openStore(t)
	<-s.Backfilled()
	if !s.rollups.Load() {
		t.Fatal("a new store does not answer from its rollups")
	}
	evs := storetest.KnownEvents()
	load(t, s, evs)
	storetest.CheckKnown(t, s)
	before := rollupDump(t, s)
	for _, batch := range [][]event.Event{evs, evs[:len(evs)/2], evs[len(evs)/2:]} {
		if err := s.Insert(context.Background(), "again", slices.Clone(batch)); err != nil {
			t.Fatal(err)
		}
	}
	if after := rollupDump(t, s); after != before {
		t.Errorf("the rollups changed with the redelivery:\n%s\nbefore:\n%s", after, before)
	}
	checkRollupsMatchVisits(t, s)
	storetest.CheckKnown(t, s)
}

// rollupDump is every rollup row as text.
func rollupDump(t *testing.T, s *Store) string {
	t.Helper()
	var dump string
	err := s.db.QueryRow("SELECT group_concat(r, char(10)) FROM (SELECT concat_ws(' ', " + rollupColumns +
		") AS r FROM rollups ORDER BY site_id, dim, slot, value)").Scan(&dump)
	if err != nil || dump == "" {
		t.Fatalf("rollups: %q (%v)", dump, err)
	}
	return dump
}

// The rollups answer only what they answer as the visits would: no
// filters, whole hours, buckets of whole hours.
func TestRollupRoutes(t *testing.T) {
	s := &Store{}
	s.rollups.Store(true)
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	q := func(from, to time.Time, loc *time.Location, filters ...store.Filter) store.Query {
		return store.Query{SiteID: "s", From: from, To: to, Location: loc, Filters: filters}
	}
	lordHowe, err := time.LoadLocation("Australia/Lord_Howe")
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	country := store.Filter{Dimension: store.DimCountry, Op: store.OpIs, Values: []string{"DE"}}
	scenarios := []struct {
		name     string
		q        store.Query
		interval store.Interval
		want     bool
	}{
		{"whole days", q(from, from.AddDate(0, 0, 30), time.UTC), store.IntervalDay, true},
		{"whole hours, hourly", q(from.Add(3*time.Hour), from.Add(9*time.Hour), time.UTC), store.IntervalHour, true},
		{"months in Berlin", q(from.Add(-time.Hour), from.AddDate(0, 2, 0).Add(-time.Hour), berlin), store.IntervalMonth, true},
		{"a filter", q(from, from.AddDate(0, 0, 1), time.UTC, country), store.IntervalDay, false},
		{"minutes", q(from, from.Add(time.Hour), time.UTC), store.IntervalMinute, false},
		{"a cut hour", q(from.Add(time.Minute), from.AddDate(0, 0, 1), time.UTC), store.IntervalDay, false},
		{"half-hour offsets", q(from.Add(-630*time.Minute), from.Add(810*time.Minute), lordHowe), store.IntervalHour, false},
		{"invalid", q(from, from, time.UTC), store.IntervalDay, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			got := s.fromRollups(sc.q)
			if got {
				b, err := store.NewBuckets(sc.q, sc.interval)
				got = err == nil && wholeHours(b)
			}
			if got != sc.want {
				t.Errorf("from the rollups: %v, want %v", got, sc.want)
			}
		})
	}
	s.rollups.Store(false)
	if s.fromRollups(scenarios[0].q) {
		t.Error("from the rollups before they are built")
	}
}

// TestQueryGuards: the largest accepted filters run, deadlines give
// store.ErrTimeout (see storetest.CheckGuards).
func TestQueryGuards(t *testing.T) {
	s := openStore(t)
	load(t, s, storetest.KnownEvents())
	storetest.CheckGuards(t, s)
}
