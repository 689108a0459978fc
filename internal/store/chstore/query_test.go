package chstore

import (
	"context"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/event"
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
	s := openTest(t, Options{})
	load(t, s, storetest.KnownEvents())
	storetest.CheckKnown(t, s)
}

// TestQueriesMatchReference runs the parity matrix (see storetest.Check)
// on a fresh database of the real server. Visitors are within
// storetest.VisitorsTolerance: uniq, and rows read before they merge.
func TestQueriesMatchReference(t *testing.T) {
	opts := storetest.DefaultOptions()
	ds := storetest.Generate(opts)
	s := openTest(t, Options{})
	load(t, s, ds.Events)
	storetest.Check(t, s, opts, ds, true)
}

// TestVisitsRedelivery: visits rebuilt as their events arrive out of order
// and again do not count twice (see storetest.CheckRedelivery).
func TestVisitsRedelivery(t *testing.T) {
	storetest.CheckRedelivery(t, openTest(t, Options{}))
}

// TestQueryGuards: the largest accepted filters run, deadlines give
// store.ErrTimeout (see storetest.CheckGuards).
func TestQueryGuards(t *testing.T) {
	s := openTest(t, Options{})
	load(t, s, storetest.KnownEvents())
	storetest.CheckGuards(t, s)
}
