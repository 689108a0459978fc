package schema

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// testConn connects to a fresh database on the server of CLICKHOUSE_URL,
// dropped at cleanup, or skips without a server.
func testConn(t *testing.T) driver.Conn {
	t.Helper()
	dsn := testutil.ClickHouseDSN(t) // dropped at cleanup
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	u.Path = "/default"
	if err := EnsureDatabase(context.Background(), open(t, u.String()), db); err != nil {
		t.Fatal(err)
	}
	return open(t, dsn)
}

func open(t *testing.T, dsn string) driver.Conn {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestDetect(t *testing.T) {
	conn := testConn(t)
	f, err := Detect(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version == "" || f.Major == 0 {
		t.Errorf("version not detected: %+v", f)
	}
	if f.MaxInsertBlockSize <= 0 {
		t.Errorf("MaxInsertBlockSize = %d", f.MaxInsertBlockSize)
	}
	// 18.x has none of the optional features; check Detect does not
	// claim them (the CI server is 18.16).
	if f.Major == 18 && (f.LowCardinality || f.TTL || f.InsertDeduplicationToken || f.NonReplicatedDeduplicationWindow) {
		t.Errorf("18.x detected with features it lacks: %+v", f)
	}
	if f.Major >= 23 && !(f.LowCardinality && f.TTL && f.TokenDeduplication()) {
		t.Errorf("%s detected without features it has: %+v", f.Version, f)
	}
	t.Log(f)
}

func TestApply(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	f, err := Detect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}

	var want []uint32
	for _, m := range Migrations {
		if m.Requires == nil || m.Requires(f) {
			want = append(want, m.Version)
		}
	}

	ran, err := Apply(ctx, conn, f)
	if err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	if !slices.Equal(ran, want) {
		t.Errorf("first Apply ran %v, want %v", ran, want)
	}
	applied, err := Applied(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, want) {
		t.Errorf("Applied = %v, want %v", applied, want)
	}

	ran, err = Apply(ctx, conn, f)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if len(ran) != 0 {
		t.Errorf("second Apply ran %v, want nothing", ran)
	}
	var records uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM schema_migrations").Scan(&records); err != nil {
		t.Fatal(err)
	}
	if int(records) != len(want) {
		t.Errorf("schema_migrations has %d rows, want %d", records, len(want))
	}
}

func TestApplyConcurrent(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	f, err := Detect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = Apply(ctx, conn, f) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply %d: %v", i, err)
		}
	}
	applied, err := Applied(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0] != 1 {
		t.Errorf("Applied = %v", applied)
	}
}

// A step that needs a feature the server lacks is not recorded, so it runs
// once the feature is there.
func TestApplyFeatureGated(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()

	steps := []Migration{
		{Version: 1, Description: "plain", Up: func(Features) []string {
			return []string{"CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree() ORDER BY x"}
		}},
		{Version: 2, Description: "gated", Requires: func(f Features) bool { return f.TTL }, Up: func(Features) []string {
			return []string{"CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = MergeTree() ORDER BY x"}
		}},
	}
	ran, err := apply(ctx, conn, Features{}, steps)
	if err != nil || !slices.Equal(ran, []uint32{1}) {
		t.Fatalf("without the feature: ran %v, %v; want [1]", ran, err)
	}
	ran, err = apply(ctx, conn, Features{TTL: true}, steps)
	if err != nil || !slices.Equal(ran, []uint32{2}) {
		t.Fatalf("with the feature: ran %v, %v; want [2]", ran, err)
	}
}

// A failing step stops the run and stays unrecorded, so the next start
// retries it.
func TestApplyFailure(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()

	steps := []Migration{
		{Version: 1, Description: "broken", Up: func(Features) []string { return []string{"CREATE TABLE broken ("} }},
		{Version: 2, Description: "after", Up: func(Features) []string {
			return []string{"CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = MergeTree() ORDER BY x"}
		}},
	}
	ran, err := apply(ctx, conn, Features{}, steps)
	if err == nil || !strings.Contains(err.Error(), "migration 1 (broken)") {
		t.Fatalf("err = %v, want it to name migration 1", err)
	}
	if len(ran) != 0 {
		t.Errorf("ran %v", ran)
	}
	applied, err := Applied(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Errorf("Applied = %v after a failed step", applied)
	}
}

func TestEventsTableOn18(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	f, err := Detect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, conn, f); err != nil {
		t.Fatal(err)
	}
	var typ string
	err = conn.QueryRow(ctx,
		"SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'events' AND name = 'country'",
	).Scan(&typ)
	if err != nil {
		t.Fatal(err)
	}
	want := "String"
	if f.LowCardinality {
		want = "LowCardinality(String)"
	}
	if typ != want {
		t.Errorf("country is %s, want %s on %s", typ, want, f.Version)
	}
}

func TestParseVersion(t *testing.T) {
	scenarios := []struct {
		in           string
		major, minor int
	}{
		{"18.16.1", 18, 16},
		{"24.8.4.13", 24, 8},
		{"25.3", 25, 3},
		{"", 0, 0},
		{"x.y", 0, 0},
	}
	for _, sc := range scenarios {
		if major, minor := parseVersion(sc.in); major != sc.major || minor != sc.minor {
			t.Errorf("parseVersion(%q) = %d.%d, want %d.%d", sc.in, major, minor, sc.major, sc.minor)
		}
	}
}

func TestQuoteIdentifier(t *testing.T) {
	if got := QuoteIdentifier("a`b\\c"); got != "`a\\`b\\\\c`" {
		t.Errorf("QuoteIdentifier = %s", got)
	}
}

// A column step that ran but was not recorded (a crash in between, or two
// instances at once) runs again without failing.
func TestAddColumnAgain(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	f, err := Detect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, conn, f); err != nil {
		t.Fatal(err)
	}
	for _, m := range Migrations {
		for _, stmt := range m.Up(f) {
			if !strings.Contains(stmt, " ADD COLUMN ") {
				continue
			}
			if err := execIdempotent(ctx, conn, stmt); err != nil {
				t.Errorf("%s again: %v", stmt, err)
			}
		}
	}
	if err := execIdempotent(ctx, conn, "ALTER TABLE events ADD COLUMN engaged String"); err != nil {
		t.Errorf("adding an existing column again: %v", err)
	}
	if err := execIdempotent(ctx, conn, "ALTER TABLE missing ADD COLUMN x UInt8"); err == nil {
		t.Error("a column of a missing table: want an error")
	}
}
