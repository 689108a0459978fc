package sqlitestore

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
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
		"DROP TABLE rollups",
		"DELETE FROM backfill WHERE name = 'rollups'",
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

// TestUpgradeBuildsRollups opens a store as main left it before the
// rollups, with inserts of the next start already kept up in some of its
// hours (as they are while the backfill runs), and checks that the backfill
// at start builds them, logging its progress, and that the views read them.
func TestUpgradeBuildsRollups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "analytics.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := crashOptions()
	ds := storetest.Generate(opts)
	half := len(ds.Events) / 2
	load(t, s, ds.Events[:half])
	for _, stmt := range []string{
		"DROP TABLE rollups",
		"PRAGMA user_version = 7",
	} {
		if _, err := s.wdb.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var logged strings.Builder
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	load(t, s, ds.Events[half:]) // meanwhile, or before the backfill
	<-s.Backfilled()
	if !s.rollups.Load() {
		t.Fatal("the views do not read the rollups after the backfill")
	}
	for _, line := range []string{`building rollups from stored visits"`, `msg="analytics: rollups built"`} {
		if !strings.Contains(logged.String(), line) {
			t.Errorf("the log has no %q:\n%s", line, logged.String())
		}
	}
	checkVisitsMatchEvents(t, s)
	q := store.Query{SiteID: opts.Sites[0].ID, From: opts.From, To: opts.To}
	want := storetest.NewReference(ds.Events).Overview(q)
	if got, err := s.Overview(context.Background(), q); err != nil || got != want {
		t.Fatalf("overview after the upgrade: %+v (%v), want %+v", got, err, want)
	}
}
