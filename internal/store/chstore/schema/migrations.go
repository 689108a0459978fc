// Package schema holds the ClickHouse analytics schema as an ordered
// list of versioned steps, applied at start by the ClickHouse store.
//
// Every statement is idempotent (CREATE … IF NOT EXISTS, settings that are
// set to the same value again), so several instances that start at once may
// all apply the same step: the worst case is a duplicate row in
// schema_migrations, which readers treat as one. A step can depend on a server
// feature; on a server without it the step is neither run nor recorded, and it
// runs once the server has been upgraded.
//
// Usage:
//
//	f, err := schema.Detect(ctx, conn)
//	...
//	applied, err := schema.Apply(ctx, conn, f)
package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Migration is one versioned schema step.
type Migration struct {
	// Version orders the steps and is what schema_migrations records.
	Version uint32

	// Description says what the step does, for logs.
	Description string

	// Requires, when set, limits the step to servers with a feature.
	Requires func(Features) bool

	// Up returns the step's statements for the detected features. Each one
	// must be safe to run again.
	Up func(Features) []string
}

// DeduplicationWindow is how many recent insert tokens a MergeTree remembers
// on servers that support it: far more than the inserts that can be retried
// while a flusher is down (about one per second).
const DeduplicationWindow = 10000

// Migrations are the steps in version order. Append only: never change or
// renumber a step that has shipped.
var Migrations = []Migration{
	{
		Version:     1,
		Description: "create the events table",
		Up: func(f Features) []string {
			lc := lowCardinality(f)
			return []string{`CREATE TABLE IF NOT EXISTS events (
	id String,
	ts DateTime,
	site_id String,
	type ` + lc + `,
	name String,
	prop_keys Array(String),
	prop_values Array(String),
	hostname ` + lc + `,
	pathname String,
	title String,
	referrer_host String,
	channel ` + lc + `,
	utm_source ` + lc + `,
	utm_medium ` + lc + `,
	utm_campaign String,
	utm_term String,
	utm_content String,
	country ` + lc + `,
	region ` + lc + `,
	city String,
	latitude Float64,
	longitude Float64,
	device ` + lc + `,
	browser ` + lc + `,
	os ` + lc + `,
	screen_width UInt16,
	visitor_id UInt64,
	session_id UInt64,
	entry UInt8
) ENGINE = MergeTree() PARTITION BY toYYYYMM(ts) ORDER BY (site_id, toDate(ts), ts)`}
		},
	},
	{
		Version:     2,
		Description: "remember recent insert tokens so a retried batch is dropped by the server",
		Requires:    Features.TokenDeduplication,
		Up: func(Features) []string {
			return []string{fmt.Sprintf(
				"ALTER TABLE events MODIFY SETTING non_replicated_deduplication_window = %d",
				DeduplicationWindow)}
		},
	},
	{
		Version:     3,
		Description: "create the visits table and list the days whose visits are to be built",
		Up: func(f Features) []string {
			lc := lowCardinality(f)
			// A visit's row is replaced by inserting a copy of it with sign -1
			// and the new row with the next version: queries sum sign-weighted
			// values, merges drop the cancelled pairs.
			return []string{`CREATE TABLE IF NOT EXISTS visits (
	site_id String,
	session_id UInt64,
	visitor_id UInt64,
	start_ts DateTime,
	end_ts DateTime,
	pageviews UInt32,
	events UInt32,
	entry_page String,
	exit_page String,
	referrer_host String,
	channel ` + lc + `,
	utm_source ` + lc + `,
	utm_medium ` + lc + `,
	utm_campaign String,
	utm_term String,
	utm_content String,
	country ` + lc + `,
	region ` + lc + `,
	city String,
	device ` + lc + `,
	browser ` + lc + `,
	os ` + lc + `,
	sign Int8,
	version UInt32
) ENGINE = VersionedCollapsingMergeTree(sign, version) PARTITION BY toYYYYMM(start_ts)
ORDER BY (site_id, toDate(start_ts), session_id)`,
				// Days of events stored before the visits table: done 0 to
				// build, 1 built (see the store's backfill).
				`CREATE TABLE IF NOT EXISTS visits_backfill (day Date, done UInt8) ENGINE = MergeTree() ORDER BY day`,
				`INSERT INTO visits_backfill (day, done) SELECT DISTINCT toDate(ts), toUInt8(0) FROM events`,
			}
		},
	},
	{
		Version:     4,
		Description: "create the visit_values table and build visits and their values again",
		Up: func(f Features) []string {
			lc := lowCardinality(f)
			// One row per visit and page or event name, replaced like the
			// visits' rows; sorted the way the breakdowns read it.
			return []string{`CREATE TABLE IF NOT EXISTS visit_values (
	site_id String,
	dim ` + lc + `,
	value String,
	session_id UInt64,
	visitor_id UInt64,
	start_ts DateTime,
	pageviews UInt32,
	events UInt32,
	bounce UInt8,
	duration UInt32,
	sign Int8,
	version UInt32
) ENGINE = VersionedCollapsingMergeTree(sign, version) PARTITION BY toYYYYMM(start_ts)
ORDER BY (site_id, dim, toDate(start_ts), session_id, value)`,
				// Every day with events is to be built again, values included:
				// backfill_days takes over from visits_backfill.
				`CREATE TABLE IF NOT EXISTS backfill_days (day Date, done UInt8) ENGINE = MergeTree() ORDER BY day`,
				`INSERT INTO backfill_days (day, done) SELECT DISTINCT toDate(ts), toUInt8(0) FROM events`,
			}
		},
	},
	{
		Version:     5,
		Description: "add the engagement columns of pings and leaves",
		Up: func(Features) []string {
			// Milliseconds visible since the previous ping, deepest scroll
			// in percent; one column per statement so a rerun skips each
			// existing one (18.16 has no ADD COLUMN IF NOT EXISTS).
			return []string{
				"ALTER TABLE events ADD COLUMN engaged UInt32 DEFAULT 0",
				"ALTER TABLE events ADD COLUMN scroll UInt8 DEFAULT 0",
			}
		},
	},
	{
		Version:     6,
		Description: "add the revenue of custom events",
		Up: func(Features) []string {
			// One column per statement: 18.16 has no ADD COLUMN IF NOT
			// EXISTS, so each is idempotent through its own error.
			return []string{
				`ALTER TABLE events ADD COLUMN revenue_amount Int64 DEFAULT 0`,
				`ALTER TABLE events ADD COLUMN revenue_currency String DEFAULT ''`,
			}
		},
	},
	{
		Version:     7,
		Description: "keep the engagement per visit and per visit and page, and build visits and their values again",
		Up: func(Features) []string {
			// A visit's visible time; per visit and page, the visible time
			// and deepest scroll there. backfill_days gains the step that
			// queued a day: a day is built again until it is marked done
			// for its latest step (see the store's backfill).
			return []string{
				"ALTER TABLE visits ADD COLUMN engaged UInt32 DEFAULT 0",
				"ALTER TABLE visit_values ADD COLUMN engaged UInt32 DEFAULT 0",
				"ALTER TABLE visit_values ADD COLUMN depth UInt8 DEFAULT 0",
				"ALTER TABLE backfill_days ADD COLUMN step UInt32 DEFAULT 4",
				"INSERT INTO backfill_days (day, done, step) SELECT DISTINCT toDate(ts), toUInt8(0), toUInt32(7) FROM events",
			}
		},
	},
	{
		Version:     8,
		Description: "add the milliseconds of the events' times",
		Up: func(Features) []string {
			// The millisecond within ts's second, so rows of one second
			// keep their order; rows stored before read 0. 18.16 has no
			// DateTime64, and the sort key stays as it is.
			return []string{"ALTER TABLE events ADD COLUMN ts_ms UInt16 DEFAULT 0 AFTER ts"}
		},
	},
	{
		Version:     9,
		Description: "keep per-hour sums of the visits, their entry pages and their values",
		Up: func(f Features) []string {
			stmts := []string{
				// The days whose rollups the store's backfill builds from the
				// rows stored before this step (see Rollups).
				`CREATE TABLE IF NOT EXISTS rollup_days (day Date, done UInt8) ENGINE = MergeTree() ORDER BY day`,
				`INSERT INTO rollup_days (day, done) SELECT DISTINCT toDate(start_ts, 'UTC'), toUInt8(0) FROM visits`,
				// Per site, dimension, value and hour of the visits' start;
				// a merge adds up the rows of one key.
				`CREATE TABLE IF NOT EXISTS rollup_hours (
	site_id String,
	dim ` + lowCardinality(f) + `,
	value String,
	hour DateTime,
	visits_sum Int64,
	pageviews_sum Int64,
	events_sum Int64,
	bounces_sum Int64,
	duration_sum Int64,
	engaged_sum Int64,
	depth_sum Int64,
	reported_sum Int64
) ENGINE = SummingMergeTree() PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, dim, hour, value)`,
			}
			for _, r := range Rollups {
				stmts = append(stmts, "CREATE MATERIALIZED VIEW IF NOT EXISTS "+r.View+" TO rollup_hours AS "+
					r.Query("toDate(start_ts, 'UTC') NOT IN (SELECT day FROM rollup_days GROUP BY day HAVING max(done) = 0)"))
			}
			return stmts
		},
	},
}

// lowCardinality is the type of the columns with few distinct values:
// LowCardinality where the server has it (dictionaries make the breakdown
// columns smaller and their GROUP BYs faster).
func lowCardinality(f Features) string {
	if f.LowCardinality {
		return "LowCardinality(String)"
	}
	return "String"
}

// createVersionTable is the bookkeeping table. MergeTree with ORDER BY works
// on 18.16 and on current servers; concurrent starts may record a version
// twice, which Applied folds into one.
const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version UInt32,
	applied_at DateTime
) ENGINE = MergeTree() ORDER BY version`

// Apply runs the steps of Migrations that are not yet recorded (and whose
// feature the server has) in the connection's database, in order, and
// returns the versions it ran.
func Apply(ctx context.Context, conn driver.Conn, f Features) ([]uint32, error) {
	return apply(ctx, conn, f, Migrations)
}

func apply(ctx context.Context, conn driver.Conn, f Features, steps []Migration) ([]uint32, error) {
	if err := execIdempotent(ctx, conn, createVersionTable); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}

	var ran []uint32
	for _, m := range steps {
		if m.Requires != nil && !m.Requires(f) {
			continue
		}
		// Re-check right before each step: another instance may have
		// applied it since this one started.
		done, err := isApplied(ctx, conn, m.Version)
		if err != nil {
			return ran, err
		}
		if done {
			continue
		}
		for _, stmt := range m.Up(f) {
			if err := execIdempotent(ctx, conn, stmt); err != nil {
				return ran, fmt.Errorf("migration %d (%s): %w", m.Version, m.Description, err)
			}
		}
		// INSERT … SELECT has no data phase, so Exec is safe with it (an
		// INSERT … VALUES through Exec hangs on 18.16).
		err = conn.Exec(ctx,
			"INSERT INTO schema_migrations (version, applied_at) SELECT toUInt32(?), now()", m.Version)
		if err != nil {
			return ran, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		ran = append(ran, m.Version)
	}
	return ran, nil
}

// Applied returns the recorded versions in ascending order.
func Applied(ctx context.Context, conn driver.Conn) ([]uint32, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	var versions []uint32
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		versions = append(versions, v)
	}
	return versions, rows.Err()
}

func isApplied(ctx context.Context, conn driver.Conn, version uint32) (bool, error) {
	var n uint64
	err := conn.QueryRow(ctx,
		"SELECT count() FROM schema_migrations WHERE version = toUInt32(?)", version).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read schema_migrations: %w", err)
	}
	return n > 0, nil
}

// EnsureDatabase creates the database if it is missing. conn must not depend
// on the database existing (connect to "default").
func EnsureDatabase(ctx context.Context, conn driver.Conn, name string) error {
	if name == "" || name == "default" {
		return nil
	}
	if err := execIdempotent(ctx, conn, "CREATE DATABASE IF NOT EXISTS "+QuoteIdentifier(name)); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// QuoteIdentifier quotes a database or table name for ClickHouse SQL.
func QuoteIdentifier(name string) string {
	r := strings.NewReplacer("\\", "\\\\", "`", "\\`")
	return "`" + r.Replace(name) + "`"
}

// Server error codes that mean another instance created the object between
// the IF NOT EXISTS check and the creation (older servers do not make the two
// atomic).
const (
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

// Codes of ADD COLUMN for a column that exists: ILLEGAL_COLUMN on 18.16,
// DUPLICATE_COLUMN on later servers.
const (
	codeIllegalColumn   = 44
	codeDuplicateColumn = 15
)

// execIdempotent runs a statement that is written to be idempotent, treating
// a lost creation race, or a column added before, as success.
func execIdempotent(ctx context.Context, conn driver.Conn, stmt string) error {
	err := conn.Exec(ctx, stmt)
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && (ex.Code == codeTableAlreadyExists || ex.Code == codeDatabaseAlreadyExists) {
		return nil
	}
	if errors.As(err, &ex) && (ex.Code == codeIllegalColumn || ex.Code == codeDuplicateColumn) &&
		strings.Contains(stmt, " ADD COLUMN ") && strings.Contains(ex.Message, "already exists") {
		return nil
	}
	return err
}
