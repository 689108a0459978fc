package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// TestUpgradeBuildsVisits opens a store as the version before visit_values
// left it (events, visits without their engagement, no values) and checks
// that the backfill at start builds the visits and their values, engagement
// included, from the stored events.
func TestUpgradeBuildsVisits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "analytics.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = storetest.Stream(crashOptions(), 5000, func(evs []event.Event) error {
		return s.Insert(context.Background(), "", evs)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Back to schema version 3, with half of its visits missing as well.
	for _, stmt := range []string{
		"DROP TABLE visit_values",
		"ALTER TABLE visits DROP COLUMN engaged",
		"ALTER TABLE events DROP COLUMN engaged",
		"ALTER TABLE events DROP COLUMN scroll",
		"ALTER TABLE events DROP COLUMN revenue_amount",
		"ALTER TABLE events DROP COLUMN revenue_currency",
		"DELETE FROM visits WHERE session_id % 2 = 0",
		"PRAGMA user_version = 3",
	} {
		if _, err := s.wdb.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.Backfilled()
	var next, end int64
	if err := s.db.QueryRow("SELECT next_row, end_row FROM backfill WHERE name = 'visits'").Scan(&next, &end); err != nil {
		t.Fatal(err)
	}
	if next <= end {
		t.Fatalf("backfill stopped at row %d of %d", next, end)
	}
	checkVisitsMatchEvents(t, s)
}
