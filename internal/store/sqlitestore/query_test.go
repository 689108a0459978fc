package sqlitestore

import (
	"context"
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
	storetest.Redeliver(t, s, evs)
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

// TestQueryGuards: the largest accepted filters run, deadlines give
// store.ErrTimeout (see storetest.CheckGuards).
func TestQueryGuards(t *testing.T) {
	s := openStore(t)
	load(t, s, storetest.KnownEvents())
	storetest.CheckGuards(t, s)
}
