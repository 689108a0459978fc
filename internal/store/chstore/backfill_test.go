package chstore

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore/schema"
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
	rewind(t, s, 4, "DROP TABLE visit_values", "ALTER TABLE visits DROP COLUMN engaged", "DROP TABLE backfill_days")
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

// rewind makes s's database look as the version before step left it: it
// runs undo, then records only the migrations before step as applied.
func rewind(t *testing.T, s *Store, step uint32, undo ...string) {
	t.Helper()
	var before []string
	for _, m := range schema.Migrations {
		if m.Version < step {
			before = append(before, strconv.Itoa(int(m.Version)))
		}
	}
	for _, stmt := range append(undo, "DROP TABLE schema_migrations",
		"CREATE TABLE schema_migrations (version UInt32, applied_at DateTime) ENGINE = MergeTree() ORDER BY version",
		"INSERT INTO schema_migrations (version, applied_at) SELECT toUInt32(arrayJoin(["+strings.Join(before, ", ")+"])), now()",
	) {
		if err := s.conn.Exec(context.Background(), stmt); err != nil {
			t.Fatal(stmt, err)
		}
	}
}

// TestUpgradeAddsMillis opens a database as the version before ts_ms left
// it: its rows read the millisecond 0, so two pageviews of one second are
// ordered by value, while the rows stored after the upgrade keep their
// order within the second. The entry and exit pages match the reference
// over the same events with the old ones at whole seconds.
func TestUpgradeAddsMillis(t *testing.T) {
	ctx := context.Background()
	dsn := testutil.ClickHouseDSN(t)
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rewind(t, s, 8, "ALTER TABLE events DROP COLUMN ts_ms")
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	pageview := func(id string, session uint64, path string, t time.Time) event.Event {
		return event.Event{ID: id, Time: t, SiteID: "upgrade", Type: event.Pageview, Pathname: path, VisitorID: session, SessionID: session}
	}
	// The old version stored the seconds alone.
	old := []event.Event{pageview("old1", 1, "/b", at), pageview("old2", 1, "/a", at)}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO events (id, ts, site_id, type, pathname, visitor_id, session_id)")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range old {
		if err := batch.Append(ev.ID, ev.Time, ev.SiteID, ev.Type, ev.Pathname, ev.VisitorID, ev.SessionID); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fresh := []event.Event{
		pageview("new1", 2, "/b", at.Add(100*time.Millisecond)),
		pageview("new2", 2, "/a", at.Add(400*time.Millisecond)),
	}
	// The old events again (already stored) build their visit.
	load(t, s, append(slices.Clone(old), fresh...))

	var ms []uint16
	rows, err := s.conn.Query(ctx, "SELECT ts_ms FROM events ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m uint16
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	rows.Close()
	if want := []uint16{100, 400, 0, 0}; !slices.Equal(ms, want) {
		t.Errorf("ts_ms of new1, new2, old1, old2 = %v, want %v", ms, want)
	}
	ref := storetest.NewReference(append(old, fresh...))
	q := store.Query{SiteID: "upgrade", From: at, To: at.Add(time.Hour)}
	for _, dim := range []store.Dimension{store.DimEntryPage, store.DimExitPage} {
		got, err := s.Breakdown(ctx, q, dim, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := ref.Breakdown(q, dim, 10, 0)
		if len(want.Rows) != 2 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v (one visit each)", dim, got, want)
		}
	}
}

// TestUpgradeBuildsRollups opens a database as the version before the
// rollups left it (schema version 8) and checks that the backfill at start
// builds them while the second half of the events arrives: the rollups
// match the rows, each counted once, and the views answered from them match
// the reference.
func TestUpgradeBuildsRollups(t *testing.T) {
	ctx := context.Background()
	opts := storetest.Options{Seed: 9, Sites: []storetest.Site{{ID: "upgrade", Timezone: "Europe/Berlin"}}, Sessions: 3000,
		From: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)}
	ds := storetest.Generate(opts)
	half := len(ds.Events) / 2
	dsn := testutil.ClickHouseDSN(t)
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	load(t, s, ds.Events[:half])
	var undo []string
	for _, r := range schema.Rollups {
		undo = append(undo, "DROP TABLE "+r.View)
	}
	rewind(t, s, 9, append(undo, "DROP TABLE rollup_hours", "DROP TABLE rollup_days")...)
	s.Close()

	s, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.rollups.Load() {
		t.Error("answering from the rollups before they are built")
	}
	load(t, s, ds.Events[half:])
	<-s.Backfilled()
	if !s.rollups.Load() {
		t.Fatal("not answering from the rollups once they are built")
	}
	checkRollups(t, s)

	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ref := storetest.NewReference(ds.Events)
	q := store.Query{SiteID: "upgrade", From: opts.From, To: opts.To.Add(24 * time.Hour), Location: loc}
	if got, want := mustOverview(t, s, q), ref.Overview(q); got != want {
		t.Errorf("overview after the upgrade:\n got %+v\nwant %+v", got, want)
	}
	for _, dim := range []store.Dimension{store.DimPage, store.DimEntryPage, store.DimEventName} {
		got, err := s.Breakdown(ctx, q, dim, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.Breakdown(q, dim, 100, 0); len(got.Rows) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s after the upgrade:\n got %+v\nwant %+v", dim, got, want)
		}
	}
	storetest.CheckTimeseries(t, s, ref, q, store.IntervalHour, false)
}

func mustOverview(t *testing.T, s *Store, q store.Query) store.Overview {
	t.Helper()
	ov, err := s.Overview(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return ov
}
