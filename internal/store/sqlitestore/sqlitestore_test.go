package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

var _ store.Writer = (*Store)(nil)

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "analytics.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testEvents(prefix string, n int, at time.Time) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			ID:        fmt.Sprintf("%s%08d", prefix, i),
			Time:      at.Add(time.Duration(i) * time.Millisecond),
			SiteID:    "site1",
			Type:      event.Pageview,
			Hostname:  "example.com",
			Pathname:  "/p/" + fmt.Sprint(i%50),
			Channel:   "direct",
			Country:   "DE",
			Device:    "desktop",
			Browser:   "Firefox",
			OS:        "Linux",
			VisitorID: uint64(i % 97),
			SessionID: uint64(i % 31),
		}
	}
	return evs
}

func count(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "analytics.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}

	type col struct {
		name, typ string
		notNull   bool
		dflt      any
	}
	want := []col{
		{"id", "TEXT", true, nil}, {"ts", "INTEGER", true, nil}, {"site_id", "TEXT", true, nil},
		{"type", "TEXT", true, nil}, {"name", "TEXT", true, "''"}, {"props", "TEXT", true, "'{}'"},
		{"hostname", "TEXT", true, "''"}, {"pathname", "TEXT", true, "''"}, {"title", "TEXT", true, "''"},
		{"referrer_host", "TEXT", true, "''"}, {"channel", "TEXT", true, "''"},
		{"utm_source", "TEXT", true, "''"}, {"utm_medium", "TEXT", true, "''"}, {"utm_campaign", "TEXT", true, "''"},
		{"utm_term", "TEXT", true, "''"}, {"utm_content", "TEXT", true, "''"},
		{"country", "TEXT", true, "''"}, {"region", "TEXT", true, "''"}, {"city", "TEXT", true, "''"},
		{"latitude", "REAL", true, "0"}, {"longitude", "REAL", true, "0"},
		{"device", "TEXT", true, "''"}, {"browser", "TEXT", true, "''"}, {"os", "TEXT", true, "''"},
		{"screen_width", "INTEGER", true, "0"},
		{"visitor_id", "INTEGER", true, nil}, {"session_id", "INTEGER", true, nil}, {"entry", "INTEGER", true, "0"},
		{"engaged", "INTEGER", true, "0"}, {"scroll", "INTEGER", true, "0"},
		{"revenue_amount", "INTEGER", true, "0"}, {"revenue_currency", "TEXT", true, "''"},
	}
	rows, err := s.db.Query("SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info('events') ORDER BY cid")
	if err != nil {
		t.Fatal(err)
	}
	var got []col
	for rows.Next() {
		var c col
		var dflt sql.NullString
		if err := rows.Scan(&c.name, &c.typ, &c.notNull, &dflt); err != nil {
			t.Fatal(err)
		}
		if dflt.Valid {
			c.dflt = dflt.String
		}
		got = append(got, c)
	}
	rows.Close()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("columns\n got %v\nwant %v", got, want)
	}
	if !reflect.DeepEqual(columns, func() []string {
		names := make([]string, len(want))
		for i, c := range want {
			names[i] = c.name
		}
		return names
	}()) {
		t.Fatal("insert column list differs from the table")
	}

	checks := []struct {
		name, query string
		want        any
	}{
		{"unique id index", "SELECT \"unique\" FROM pragma_index_list('events') WHERE name = 'events_id'", int64(1)},
		{"site/ts index", "SELECT group_concat(name) FROM pragma_index_info('events_site_ts')", "site_id,ts"},
		{"covering query index", "SELECT group_concat(name) FROM pragma_index_info('events_site_ts_visit')", "site_id,ts,type,session_id,visitor_id,pathname"},
		{"schema version", "PRAGMA user_version", int64(len(migrations))},
		{"wal", "PRAGMA journal_mode", "wal"},
	}
	var sync int
	if err := s.wdb.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("writer synchronous = %d (err %v), want 2 (FULL)", sync, err)
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			var v any
			if err := s.db.QueryRow(c.query).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != c.want {
				t.Fatalf("%s = %v (%T), want %v", c.query, v, v, c.want)
			}
		})
	}

	t.Run("reopen keeps data", func(t *testing.T) {
		if err := s.Insert(context.Background(), "t", testEvents("a", 3, time.Now())); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if n := count(t, s2.db); n != 3 {
			t.Fatalf("%d rows after reopen, want 3", n)
		}
	})

	t.Run("newer schema refused", func(t *testing.T) {
		db, _ := sql.Open("sqlite", path)
		db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1))
		db.Close()
		if s3, err := Open(path); err == nil {
			s3.Close()
			t.Fatal("Open accepted a schema from a newer build")
		}
	})
}

func TestInsertRow(t *testing.T) {
	s := openStore(t)
	ts := time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	ev := event.Event{
		ID: "abc", Time: ts, SiteID: "s1", Type: event.Custom, Name: "signup",
		Props:    map[string]string{"plan": "pro", "a": "1"},
		Hostname: "example.com", Pathname: "/pricing", Title: "Pricing",
		ReferrerHost: "news.ycombinator.com", Channel: "social",
		UTMSource: "hn", UTMMedium: "post", UTMCampaign: "launch", UTMTerm: "t", UTMContent: "c",
		Country: "DE", Region: "BE", City: "Berlin", Latitude: 52.52, Longitude: 13.405,
		Device: "mobile", Browser: "Safari", OS: "iOS", ScreenWidth: 390,
		VisitorID: math.MaxUint64, SessionID: 7, Entry: true,
		RevenueAmount: 49_900_000, RevenueCurrency: "EUR",
	}
	if err := s.Insert(context.Background(), "tok", []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	got := make([]any, len(columns))
	ptrs := make([]any, len(columns))
	for i := range got {
		ptrs[i] = &got[i]
	}
	if err := s.db.QueryRow("SELECT * FROM events").Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	want := []any{
		"abc", ts.UnixMilli(), "s1", "event", "signup", `{"a":"1","plan":"pro"}`,
		"example.com", "/pricing", "Pricing",
		"news.ycombinator.com", "social", "hn", "post", "launch", "t", "c",
		"DE", "BE", "Berlin", 52.52, 13.405,
		"mobile", "Safari", "iOS", int64(390),
		int64(math.MaxInt64), int64(7), int64(1), int64(0), int64(0), int64(49_900_000), "EUR",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s = %v (%T), want %v (%T)", columns[i], got[i], got[i], want[i], want[i])
		}
	}

	leave := event.Event{ID: "lv", Time: ts, SiteID: "s1", Type: event.Leave, SessionID: 7, Engaged: 15250, Scroll: 80}
	if err := s.Insert(context.Background(), "tok2", []event.Event{leave}); err != nil {
		t.Fatal(err)
	}
	var engaged, scroll int
	if err := s.db.QueryRow("SELECT engaged, scroll FROM events WHERE id = 'lv'").Scan(&engaged, &scroll); err != nil {
		t.Fatal(err)
	}
	if engaged != 15250 || scroll != 80 {
		t.Errorf("leave engagement = %d ms, %d%%; want 15250, 80", engaged, scroll)
	}
}

func TestInsertIdempotent(t *testing.T) {
	now := time.Now()
	a := testEvents("a", 1200, now) // many chunks; the halves below end in partial ones
	b := testEvents("b", 10, now)
	cases := []struct {
		name    string
		batches [][]event.Event
		want    int
	}{
		{"same batch twice", [][]event.Event{a, a}, 1200},
		{"overlapping batches", [][]event.Event{a[:700], a[500:]}, 1200},
		{"duplicates inside a batch", [][]event.Event{append(append([]event.Event{}, b...), b...)}, 10},
		{"empty batch", [][]event.Event{nil}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			for i, batch := range c.batches {
				if err := s.Insert(context.Background(), fmt.Sprint(i), batch); err != nil {
					t.Fatal(err)
				}
			}
			if n := count(t, s.db); n != c.want {
				t.Fatalf("%d rows, want %d", n, c.want)
			}
		})
	}
}

func TestInsertRejectsBadEvents(t *testing.T) {
	good := testEvents("g", 1, time.Now())[0]
	cases := []struct {
		name   string
		break_ func(*event.Event)
	}{
		{"no id", func(e *event.Event) { e.ID = "" }},
		{"no site", func(e *event.Event) { e.SiteID = "" }},
		{"unknown type", func(e *event.Event) { e.Type = "click" }},
		{"no time", func(e *event.Event) { e.Time = time.Time{} }},
		{"NaN latitude", func(e *event.Event) { e.Latitude = math.NaN() }},
		{"infinite longitude", func(e *event.Event) { e.Longitude = math.Inf(1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			bad := good
			bad.ID = "bad"
			c.break_(&bad)
			batch := append(testEvents("ok", 3, time.Now()), bad)
			err := s.Insert(context.Background(), "t", batch)
			if err == nil || !store.IsPermanent(err) {
				t.Fatalf("err %v, want a permanent error", err)
			}
			if n := count(t, s.db); n != 0 {
				t.Fatalf("%d rows written by a failed batch, want 0", n)
			}
		})
	}

	t.Run("busy database is not permanent", func(t *testing.T) {
		s := openStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.Insert(ctx, "t", []event.Event{good})
		if err == nil || store.IsPermanent(err) {
			t.Fatalf("err %v, want a retryable error", err)
		}
	})
}

func TestDeleteBefore(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	cutoff := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	old := testEvents("old", deleteChunk*2+17, cutoff.Add(-48*time.Hour))
	recent := testEvents("new", 25, cutoff)
	for _, batch := range [][]event.Event{old[:6000], recent, old[6000:]} {
		if err := s.Insert(ctx, "t", batch); err != nil {
			t.Fatal(err)
		}
	}

	n, err := s.DeleteBefore(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(old)) {
		t.Fatalf("deleted %d, want %d", n, len(old))
	}
	var left, oldLeft int
	s.db.QueryRow("SELECT count(*), count(*) FILTER (WHERE ts < ?) FROM events", cutoff.UnixMilli()).Scan(&left, &oldLeft)
	if left != len(recent) || oldLeft != 0 {
		t.Fatalf("%d rows left (%d old), want %d recent", left, oldLeft, len(recent))
	}
	if n, err := s.DeleteBefore(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("second run deleted %d, err %v; want 0, nil", n, err)
	}
	var rollups int
	s.db.QueryRow("SELECT count(*) FROM rollups WHERE slot < ?", cutoff.UnixMilli()).Scan(&rollups)
	if rollups != 0 {
		t.Fatalf("%d rollups before the cutoff", rollups)
	}

	// A cutoff inside an hour takes the visits it deletes from that hour's
	// rollups.
	mid := testEvents("mid", 100, cutoff.Add(time.Hour))
	for i := range mid {
		mid[i].SiteID = "site2"
	}
	if err := s.Insert(ctx, "t", mid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteBefore(ctx, cutoff.Add(time.Hour+10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var visits int
	s.db.QueryRow("SELECT count(*) FROM visits WHERE site_id = 'site2'").Scan(&visits)
	s.db.QueryRow("SELECT sum(visits) FROM rollups WHERE site_id = 'site2' AND dim = ''").Scan(&rollups)
	if visits != 31-10 || rollups != visits {
		t.Fatalf("%d visits, %d in the rollups after a cutoff inside their hour, want 21", visits, rollups)
	}
	checkRollupsMatchVisits(t, s)
}

func TestConcurrentInsertAndRead(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	const batches, size = 20, 500

	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 3 {
		wg.Go(func() {
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				var n int
				if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE site_id = 'site1'").Scan(&n); err != nil {
					errs <- err
					return
				}
				if n < last || n%size != 0 {
					errs <- fmt.Errorf("read %d rows after %d: a reader saw a partial or vanished batch", n, last)
					return
				}
				last = n
			}
		})
	}
	for i := range batches {
		if err := s.Insert(ctx, fmt.Sprint(i), testEvents(fmt.Sprintf("c%02d-", i), size, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := count(t, s.db); n != batches*size {
		t.Fatalf("%d rows, want %d", n, batches*size)
	}
}
