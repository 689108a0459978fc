package chstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore/schema"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

var _ store.Store = (*Store)(nil)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dsn := testutil.ClickHouseDSN(t)

	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("Open on a missing database: %v", err)
	}
	defer s.Close()
	if got := s.Kind(); got != "clickhouse" {
		t.Errorf("Kind() = %q", got)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	var cols []string
	rows, err := s.conn.Query(ctx,
		"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'events'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, name)
	}
	rows.Close()
	var want []string
	for _, c := range columns {
		want = append(want, c.name)
	}
	if !slices.Equal(cols, want) {
		t.Errorf("events columns = %v, want %v", cols, want)
	}

	var partitionKey, sortingKey string
	err = s.conn.QueryRow(ctx,
		"SELECT partition_key, sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'events'",
	).Scan(&partitionKey, &sortingKey)
	if err != nil {
		t.Fatal(err)
	}
	if partitionKey != "toYYYYMM(ts)" || sortingKey != "site_id, toDate(ts), ts" {
		t.Errorf("partition key %q, sorting key %q", partitionKey, sortingKey)
	}
}

func TestOpenConcurrent(t *testing.T) {
	dsn := testutil.ClickHouseDSN(t)

	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn, Options{})
			if err == nil {
				err = s.Insert(context.Background(), "t", makeEvents(10, time.Now()))
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}

	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := countRows(t, s); got != n*10 {
		t.Errorf("rows = %d, want %d", got, n*10)
	}
	applied, err := schema.Applied(context.Background(), s.conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0] != 1 {
		t.Errorf("applied migrations = %v", applied)
	}
}

func TestInsertRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()

	events := makeEvents(1000, time.Date(2024, 3, 31, 23, 59, 0, 0, time.UTC)) // spans two months
	events[1].Latitude, events[1].Longitude = -33.8688197, 151.2092955
	events[2].ScreenWidth = 100000 // clamped to UInt16
	events[3].RevenueAmount, events[3].RevenueCurrency = 49_990_000, "EUR"
	if err := s.Insert(ctx, "round-trip", events); err != nil {
		t.Fatalf("Insert: %v", err)
	}

	got := readEvents(t, s)
	if len(got) != len(events) {
		t.Fatalf("read %d rows, want %d", len(got), len(events))
	}
	want := slices.Clone(events)
	for i := range want {
		want[i].Time = want[i].Time.Truncate(time.Millisecond)
		if want[i].ScreenWidth > 65535 {
			want[i].ScreenWidth = 65535
		}
		if len(want[i].Props) == 0 {
			want[i].Props = nil
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
	for i := range want {
		if !equalEvents(got[i], want[i]) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestInsertIdempotent(t *testing.T) {
	start := time.Now().UTC().Add(-time.Hour)
	all := makeEvents(3000, start)

	scenarios := []struct {
		name    string
		batches [][]event.Event
		tokens  []string
		want    int
	}{
		{"same batch twice, same token", [][]event.Event{all[:2000], all[:2000]}, []string{"a", "a"}, 2000},
		{"same batch twice, new token", [][]event.Event{all[:2000], all[:2000]}, []string{"a", "b"}, 2000},
		{"partial overlap", [][]event.Event{all[:2000], all[1000:]}, []string{"a", "b"}, 3000},
		{"overlap in reverse order", [][]event.Event{all[1000:], reversed(all[:2000])}, []string{"a", "b"}, 3000},
		{"subset of a stored batch", [][]event.Event{all, all[500:600]}, []string{"a", "b"}, 3000},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			s := openTest(t, Options{})
			for i, batch := range sc.batches {
				if err := s.Insert(context.Background(), sc.tokens[i], batch); err != nil {
					t.Fatalf("Insert %d: %v", i, err)
				}
			}
			if got := countRows(t, s); got != sc.want {
				t.Errorf("rows = %d, want %d", got, sc.want)
			}
			var distinct uint64
			if err := s.conn.QueryRow(context.Background(), "SELECT uniqExact(id) FROM events").Scan(&distinct); err != nil {
				t.Fatal(err)
			}
			if int(distinct) != sc.want {
				t.Errorf("distinct ids = %d, want %d", distinct, sc.want)
			}
		})
	}
}

func TestInsertLargerThanOneBlock(t *testing.T) {
	s := openTest(t, Options{})
	s.features.MaxInsertBlockSize = 100 // as if the server took 100 rows per block

	events := makeEvents(250, time.Now().Add(-time.Minute))
	// The first attempt stored only its first block, then failed.
	if err := s.Insert(context.Background(), "big", events[:100]); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(context.Background(), "big", events); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, s); got != 250 {
		t.Errorf("rows = %d, want 250", got)
	}
	var parts uint64
	err := s.conn.QueryRow(context.Background(),
		"SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active").Scan(&parts)
	if err != nil {
		t.Fatal(err)
	}
	if parts < 3 {
		t.Errorf("active parts = %d, want one per block (at least 3)", parts)
	}
}

func TestInsertEmpty(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Insert(context.Background(), "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, s); got != 0 {
		t.Errorf("rows = %d", got)
	}
}

func TestDeleteBefore(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()

	for _, start := range []time.Time{
		time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC),
	} {
		if err := s.Insert(ctx, start.String(), makeEvents(100, start)); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		cutoff      time.Time
		wantDropped int
		wantRows    int
	}{
		{time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), 0, 400}, // January has not ended
		{time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC), 2, 200}, // January and February
		{time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC), 0, 200}, // idempotent
		{time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), 1, 0},
	}
	for _, step := range steps {
		t.Run(step.cutoff.Format("2006-01-02"), func(t *testing.T) {
			n, err := s.DeleteBefore(ctx, step.cutoff)
			if err != nil {
				t.Fatal(err)
			}
			if n != step.wantDropped {
				t.Errorf("dropped %d partitions, want %d", n, step.wantDropped)
			}
			if got := countRows(t, s); got != step.wantRows {
				t.Errorf("rows = %d, want %d", got, step.wantRows)
			}
		})
	}
}

func TestRetentionLoop(t *testing.T) {
	dsn := testutil.ClickHouseDSN(t)
	ctx := context.Background()

	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := makeEvents(10, time.Now().AddDate(0, -3, 0))
	fresh := makeEvents(10, time.Now().Add(-time.Minute))
	if err := s.Insert(ctx, "t", append(old, fresh...)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, dsn, Options{
		RetentionDays:     31,
		RetentionInterval: 10 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for countRows(t, s) != len(fresh) {
		if time.Now().After(deadline) {
			t.Fatalf("rows = %d after 10s, want the %d fresh ones", countRows(t, s), len(fresh))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUnreachable(t *testing.T) {
	s := openTest(t, Options{})
	addr := closedPort(t)

	t.Run("open", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := Open(ctx, "clickhouse://default:@"+addr+"/pl_unreachable?dial_timeout=1s", Options{})
		if err == nil || IsPermanent(err) {
			t.Fatalf("Open = %v, want a transient error", err)
		}
	})

	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		DialTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	down := &Store{conn: conn, database: s.database, features: s.features, opts: s.opts}
	defer down.Close()

	t.Run("insert", func(t *testing.T) {
		err := down.Insert(context.Background(), "t", makeEvents(10, time.Now()))
		if err == nil || IsPermanent(err) {
			t.Fatalf("Insert = %v, want a transient error", err)
		}
	})
	t.Run("ping", func(t *testing.T) {
		if err := down.Ping(context.Background()); err == nil || IsPermanent(err) {
			t.Fatalf("Ping = %v, want a transient error", err)
		}
	})
}

// A store whose server goes away mid-life fails with transient errors, stores
// nothing twice and picks up again once the server is back.
func TestOutage(t *testing.T) {
	dsn := testutil.ClickHouseDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, u.Host)
	u.Host = proxy.Addr
	q := u.Query()
	q.Set("dial_timeout", "1s")
	u.RawQuery = q.Encode()

	ctx := context.Background()
	s, err := Open(ctx, u.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	events := makeEvents(500, time.Now().Add(-time.Minute))
	if err := s.Insert(ctx, "a", events[:200]); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"insert", func() error { return s.Insert(ctx, "b", events) }},
		{"ping", func() error { return s.Ping(ctx) }},
	} {
		if err := op.run(); err == nil || IsPermanent(err) {
			t.Errorf("%s while the server is away = %v, want a transient error", op.name, err)
		}
	}

	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Insert(ctx, "b", events)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Insert after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := countRows(t, s); got != len(events) {
		t.Errorf("rows = %d, want %d", got, len(events))
	}
}

func TestIsPermanent(t *testing.T) {
	s := openTest(t, Options{})

	bad := makeEvents(3, time.Now())
	bad[1].Time = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)
	insertErr := s.Insert(context.Background(), "bad", bad)

	var typeErr error
	if err := s.conn.Exec(context.Background(), "SELECT toUInt8('x') + 1"); err != nil {
		typeErr = classify("query", err)
	}

	scenarios := []struct {
		name string
		err  error
		want bool
	}{
		{"event time out of range", insertErr, true},
		{"server parse error", typeErr, true},
		{"server type mismatch", classify("insert", &clickhouse.Exception{Code: 53}), true},
		{"client conversion", classify("insert", clickhouse.ErrBatchInvalid), true},
		{"too many parts", classify("insert", &clickhouse.Exception{Code: 252}), false},
		{"unknown table", classify("insert", &clickhouse.Exception{Code: 60}), false},
		{"eof", classify("insert", io.EOF), false},
		{"dial", classify("insert", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), false},
		{"deadline", classify("insert", context.DeadlineExceeded), false},
		{"acquire timeout", classify("insert", clickhouse.ErrAcquireConnTimeout), false},
		{"unclassified", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.err == nil && sc.name != "nil" {
				t.Fatal("scenario produced no error")
			}
			if got := IsPermanent(sc.err); got != sc.want {
				t.Errorf("IsPermanent(%v) = %t, want %t", sc.err, got, sc.want)
			}
		})
	}
	if got := countRows(t, s); got != 0 {
		t.Errorf("a rejected batch stored %d rows", got)
	}
}

func TestCurrentTTLDays(t *testing.T) {
	scenarios := []struct {
		engine string
		want   int
	}{
		{"MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (site_id, toDate(ts), ts) SETTINGS index_granularity = 8192", 0},
		{"MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (site_id, toDate(ts), ts) TTL ts + toIntervalDay(400) SETTINGS index_granularity = 8192", 400},
		{"MergeTree ORDER BY id TTL ts + toIntervalMonth(1) SETTINGS index_granularity = 8192", -1},
	}
	for _, sc := range scenarios {
		if got := currentTTLDays(sc.engine); got != sc.want {
			t.Errorf("currentTTLDays(%q) = %d, want %d", sc.engine, got, sc.want)
		}
	}
}

func countRows(tb testing.TB, s *Store) int {
	tb.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), "SELECT count() FROM events").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return int(n)
}

// readEvents reads the whole table back as events, ordered by id.
func readEvents(tb testing.TB, s *Store) []event.Event {
	tb.Helper()
	rows, err := s.conn.Query(context.Background(), "SELECT "+columnList()+" FROM events ORDER BY id")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var (
			ev         event.Event
			keys, vals []string
			ms, width  uint16
			entry      uint8
			engaged    uint32
			scroll     uint8
		)
		err := rows.Scan(&ev.ID, &ev.Time, &ms, &ev.SiteID, &ev.Type, &ev.Name, &keys, &vals,
			&ev.Hostname, &ev.Pathname, &ev.Title, &ev.ReferrerHost, &ev.Channel,
			&ev.UTMSource, &ev.UTMMedium, &ev.UTMCampaign, &ev.UTMTerm, &ev.UTMContent,
			&ev.Country, &ev.Region, &ev.City, &ev.Latitude, &ev.Longitude,
			&ev.Device, &ev.Browser, &ev.OS, &width, &ev.VisitorID, &ev.SessionID, &entry, &engaged, &scroll,
			&ev.RevenueAmount, &ev.RevenueCurrency)
		if err != nil {
			tb.Fatal(err)
		}
		if len(keys) != len(vals) {
			tb.Fatalf("event %s: %d prop keys, %d values", ev.ID, len(keys), len(vals))
		}
		if len(keys) > 0 {
			ev.Props = make(map[string]string, len(keys))
			for i, k := range keys {
				ev.Props[k] = vals[i]
			}
		}
		ev.Time = ev.Time.Add(time.Duration(ms) * time.Millisecond)
		ev.ScreenWidth = int(width)
		ev.Entry = entry == 1
		ev.Engaged, ev.Scroll = int(engaged), int(scroll)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func columnList() string {
	return insertQuery[len("INSERT INTO events (") : len(insertQuery)-1]
}

func equalEvents(a, b event.Event) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func reversed(events []event.Event) []event.Event {
	out := slices.Clone(events)
	slices.Reverse(out)
	return out
}

func TestBlockToken(t *testing.T) {
	events := makeEvents(5, time.Now())
	base := blockToken("t", events)
	scenarios := []struct {
		name  string
		token string
		same  bool
	}{
		{"same batch again", blockToken("t", slices.Clone(events)), true},
		{"rows removed by the check", blockToken("t", events[1:]), false},
		{"other batch token", blockToken("u", events), false},
		{"other order", blockToken("t", reversed(events)), false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if got := sc.token == base; got != sc.same {
				t.Errorf("%s vs %s: same = %t, want %t", sc.token, base, got, sc.same)
			}
		})
	}
}
