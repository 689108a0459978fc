package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; PRAGMA user_version holds how many ran.
// Append new steps, never edit one that has shipped.
var migrations = []string{
	// 1: the events table as agreed for both stores.
	`CREATE TABLE IF NOT EXISTS events (
  id            TEXT    NOT NULL,
  ts            INTEGER NOT NULL,
  site_id       TEXT    NOT NULL,
  type          TEXT    NOT NULL,
  name          TEXT    NOT NULL DEFAULT '',
  props         TEXT    NOT NULL DEFAULT '{}',
  hostname      TEXT    NOT NULL DEFAULT '',
  pathname      TEXT    NOT NULL DEFAULT '',
  title         TEXT    NOT NULL DEFAULT '',
  referrer_host TEXT    NOT NULL DEFAULT '',
  channel       TEXT    NOT NULL DEFAULT '',
  utm_source    TEXT    NOT NULL DEFAULT '',
  utm_medium    TEXT    NOT NULL DEFAULT '',
  utm_campaign  TEXT    NOT NULL DEFAULT '',
  utm_term      TEXT    NOT NULL DEFAULT '',
  utm_content   TEXT    NOT NULL DEFAULT '',
  country       TEXT    NOT NULL DEFAULT '',
  region        TEXT    NOT NULL DEFAULT '',
  city          TEXT    NOT NULL DEFAULT '',
  latitude      REAL    NOT NULL DEFAULT 0,
  longitude     REAL    NOT NULL DEFAULT 0,
  device        TEXT    NOT NULL DEFAULT '',
  browser       TEXT    NOT NULL DEFAULT '',
  os            TEXT    NOT NULL DEFAULT '',
  screen_width  INTEGER NOT NULL DEFAULT 0,
  visitor_id    INTEGER NOT NULL,
  session_id    INTEGER NOT NULL,
  entry         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events (id);
CREATE INDEX IF NOT EXISTS events_site_ts ON events (site_id, ts);`,
	// 2: the analytics queries read a site's range through an index that
	// also holds the columns of the per-visit sums and of the page breakdown,
	// so those queries never touch the wide table rows (35-45% less CPU at 1M
	// events). events_site_ts stays: it is part of the agreed schema.
	`CREATE INDEX IF NOT EXISTS events_site_ts_visit ON events (site_id, ts, type, session_id, visitor_id, pathname);`,
	// 3: one row per visit, kept up by Insert from the visit's events
	// (sqlquery.VisitsSQL) in the transaction that writes them. Stored in
	// the order the queries read it (a site's visits by start); the unique
	// index lets INSERT OR REPLACE swap a visit's row when its start moves.
	// Visits of existing events are built by the backfill (see backfill.go).
	`CREATE TABLE IF NOT EXISTS visits (
  site_id       TEXT    NOT NULL,
  session_id    INTEGER NOT NULL,
  visitor_id    INTEGER NOT NULL,
  start_ts      INTEGER NOT NULL,
  end_ts        INTEGER NOT NULL,
  pageviews     INTEGER NOT NULL,
  events        INTEGER NOT NULL,
  entry_page    TEXT    NOT NULL,
  exit_page     TEXT    NOT NULL,
  referrer_host TEXT    NOT NULL,
  channel       TEXT    NOT NULL,
  utm_source    TEXT    NOT NULL,
  utm_medium    TEXT    NOT NULL,
  utm_campaign  TEXT    NOT NULL,
  utm_term      TEXT    NOT NULL,
  utm_content   TEXT    NOT NULL,
  country       TEXT    NOT NULL,
  region        TEXT    NOT NULL,
  city          TEXT    NOT NULL,
  device        TEXT    NOT NULL,
  browser       TEXT    NOT NULL,
  os            TEXT    NOT NULL,
  PRIMARY KEY (site_id, start_ts, session_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS visits_session ON visits (site_id, session_id);
CREATE INDEX IF NOT EXISTS events_session ON events (session_id);
CREATE TABLE IF NOT EXISTS backfill (
  name      TEXT    PRIMARY KEY,
  next_row  INTEGER NOT NULL,
  end_row   INTEGER NOT NULL
);
INSERT OR IGNORE INTO backfill (name, next_row, end_row) SELECT 'visits', 1, coalesce(max(rowid), 0) FROM events;`,
	// 4: one row per visit and page or event name (sqlquery.VisitValuesSQL)
	// with the visit's visitor, start, bounce and duration, kept up by
	// Insert with the visits, so the page and event breakdowns read it
	// instead of joining events to visits. Stored in the order those
	// queries read it. The visits backfill starts over: it builds both.
	`CREATE TABLE IF NOT EXISTS visit_values (
  site_id       TEXT    NOT NULL,
  dim           TEXT    NOT NULL,
  start_ts      INTEGER NOT NULL,
  session_id    INTEGER NOT NULL,
  value         TEXT    NOT NULL,
  visitor_id    INTEGER NOT NULL,
  pageviews     INTEGER NOT NULL,
  events        INTEGER NOT NULL,
  bounce        INTEGER NOT NULL,
  duration      INTEGER NOT NULL,
  PRIMARY KEY (site_id, dim, start_ts, session_id, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS visit_values_session ON visit_values (site_id, session_id);
INSERT OR REPLACE INTO backfill (name, next_row, end_row) SELECT 'visits', 1, coalesce(max(rowid), 0) FROM events;`,
	// 5: the engagement pings and leaves carry: milliseconds visible since
	// the previous ping, deepest scroll in percent (0 on other rows).
	`ALTER TABLE events ADD COLUMN engaged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN scroll INTEGER NOT NULL DEFAULT 0;`,
	// 6: the revenue of custom events (event.Event.RevenueAmount, millionths).
	`ALTER TABLE events ADD COLUMN revenue_amount INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN revenue_currency TEXT NOT NULL DEFAULT '';`,
	// 7: the engagement kept per visit (its visible time) and per visit and
	// page (visible time and deepest scroll there), so the page breakdown's
	// time on page and scroll depth read visit_values instead of grouping
	// the range's pings. The visits backfill starts over to fill them.
	`ALTER TABLE visits ADD COLUMN engaged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visit_values ADD COLUMN engaged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visit_values ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
INSERT OR REPLACE INTO backfill (name, next_row, end_row) SELECT 'visits', 1, coalesce(max(rowid), 0) FROM events;`,
	// 8: per site, UTC hour and value, the sums and counted visitor set of
	// the visits that started in it (see rollup.go), kept up by Insert, so
	// the unfiltered views read a row per hour and value instead of every
	// visit. The rows left without visits are deleted through rollups_empty.
	// A rowid table: WITHOUT ROWID leaves the visitor sets' overflow pages
	// far from full.
	// The rollups backfill builds the hours of the stored visits (start
	// times in next_row..end_row).
	`CREATE TABLE IF NOT EXISTS rollups (
  site_id   TEXT    NOT NULL,
  dim       TEXT    NOT NULL,
  slot      INTEGER NOT NULL,
  value     TEXT    NOT NULL,
  visits    INTEGER NOT NULL,
  pageviews INTEGER NOT NULL,
  events    INTEGER NOT NULL,
  bounces   INTEGER NOT NULL,
  duration  INTEGER NOT NULL,
  engaged   INTEGER NOT NULL,
  depth     INTEGER NOT NULL,
  reported  INTEGER NOT NULL,
  visitors  BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS rollups_key ON rollups (site_id, dim, slot, value);
CREATE INDEX IF NOT EXISTS rollups_empty ON rollups (site_id) WHERE visits = 0;
INSERT OR REPLACE INTO backfill (name, next_row, end_row)
  SELECT 'rollups', coalesce(min(start_ts), 0), coalesce(max(start_ts), -1) FROM visits;`,
}

// migrate applies the migrations the database has not seen yet, each in
// its own transaction together with the version bump.
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("sqlitestore: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("sqlitestore: database schema version %d is newer than this build knows (%d)", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlitestore: migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlitestore: migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlitestore: migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlitestore: migration %d: %w", v+1, err)
		}
	}
	return nil
}
