package chstore

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestUpgradeBuildsValues opens a database as the version before
// visit_values left it (events and visits without their engagement, schema
// version 3) and checks that the backfill at start builds the visit values
// and the visits' engagement, so the page, event and country breakdowns
// (time on page, scroll depth, visit duration) match the reference.
func TestUpgradeBuildsValues(t *testing.T) {
	ctx := context.Background()
	opts := storetest.Options{Seed: 7, Sites: []storetest.Site{{ID: "upgrade", Timezone: "UTC"}}, Sessions: 3000,
		From: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)}
	ds := storetest.Generate(opts)
	dsn := testutil.ClickHouseDSN(t)
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	load(t, s, ds.Events)
	for _, stmt := range []string{
		"DROP TABLE visit_values",
		"ALTER TABLE visits DROP COLUMN engaged",
		"DROP TABLE backfill_days",
		"DROP TABLE schema_migrations",
		createVersionTableForTest,
		"INSERT INTO schema_migrations (version, applied_at) SELECT toUInt32(number + 1), now() FROM system.numbers LIMIT 3",
	} {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			t.Fatal(stmt, err)
		}
	}
	s.Close()

	s, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.Backfilled()
	ref := storetest.NewReference(ds.Events)
	q := store.Query{SiteID: "upgrade", From: opts.From, To: opts.To.Add(24 * time.Hour)}
	for _, dim := range []store.Dimension{store.DimPage, store.DimEventName, store.DimCountry} {
		got, err := s.Breakdown(ctx, q, dim, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.Breakdown(q, dim, 100, 0); len(got.Rows) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s after the upgrade:\n got %+v\nwant %+v", dim, got, want)
		}
	}
}

const createVersionTableForTest = "CREATE TABLE schema_migrations (version UInt32, applied_at DateTime) ENGINE = MergeTree() ORDER BY version"
