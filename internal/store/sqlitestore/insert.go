package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
)

// columns of the events table in insert order.
var columns = []string{
	"id", "ts", "site_id", "type", "name", "props",
	"hostname", "pathname", "title",
	"referrer_host", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
	"country", "region", "city", "latitude", "longitude",
	"device", "browser", "os", "screen_width",
	"visitor_id", "session_id", "entry", "engaged", "scroll", "revenue_amount", "revenue_currency",
}

// chunkRows is how many rows one INSERT statement carries. modernc.org/sqlite
// matches each bound parameter to its argument with a linear search, which
// makes binding quadratic in a statement's parameter count: 500-row
// statements ran at under 2,000 rows/s, 4 to 16 rows (112 to 448
// parameters) at 40-60k rows/s, so the limit of 32766 variables is far off.
const chunkRows = 8

// insertSQL returns a multi-row INSERT OR IGNORE for n rows.
func insertSQL(n int) string {
	row := "(" + strings.Repeat("?,", len(columns)-1) + "?)"
	var b strings.Builder
	b.Grow(64 + len(columns)*16 + n*(len(row)+1))
	b.WriteString("INSERT OR IGNORE INTO events (")
	b.WriteString(strings.Join(columns, ","))
	b.WriteString(") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// Insert writes the events in one transaction. Rows whose id is already
// stored are skipped, so a redelivered batch adds nothing (the token is not
// needed for that and is ignored). An event the table cannot hold (no id,
// no site, unknown type, no time, NaN coordinates) fails the whole batch
// with an error for which store.IsPermanent reports true.
func (s *Store) Insert(ctx context.Context, token string, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	for i := range events {
		if err := validate(&events[i]); err != nil {
			return store.PermanentError(fmt.Errorf("sqlitestore: event %d (id %q): %w", i, events[i].ID, err))
		}
	}

	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback() // no-op after Commit

	stmt := tx.StmtContext(ctx, s.insertChunk)
	args := make([]any, 0, min(len(events), chunkRows)*len(columns))
	for start := 0; start < len(events); start += chunkRows {
		chunk := events[start:min(start+chunkRows, len(events))]
		args = args[:0]
		for i := range chunk {
			args, err = appendRow(args, &chunk[i])
			if err != nil {
				return store.PermanentError(fmt.Errorf("sqlitestore: event %q: %w", chunk[i].ID, err))
			}
		}
		if len(chunk) == chunkRows {
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(len(chunk)), args...)
		}
		if err != nil {
			return classify(err)
		}
	}
	if err := refreshVisits(ctx, tx, events); err != nil {
		return classify(err)
	}
	return classify(tx.Commit())
}

// refreshVisits rebuilds the visits and visit values of the events'
// sessions from all of their stored events, so a visit is the same whatever
// order and however often its events arrived: a redelivered batch rewrites
// identical rows.
func refreshVisits(ctx context.Context, tx *sql.Tx, events []event.Event) error {
	sessions := map[string][]int64{}
	seen := map[[2]any]bool{}
	for i := range events {
		id := int64(events[i].SessionID & idMask)
		k := [2]any{events[i].SiteID, id}
		if !seen[k] {
			seen[k] = true
			sessions[events[i].SiteID] = append(sessions[events[i].SiteID], id)
		}
	}
	for site, ids := range sessions {
		list, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		if err := upsertVisits(ctx, tx, site, string(list)); err != nil {
			return err
		}
	}
	return nil
}

// sessionsWhere selects the events of a site's (?1) sessions by a JSON
// array of ids (?2), looked up by session: without statistics the planner
// would scan all of the site's events instead.
const sessionsWhere = "rowid IN (SELECT e.rowid FROM json_each(?2) AS j CROSS JOIN events AS e INDEXED BY events_session " +
	"WHERE e.session_id = j.value AND e.site_id = ?1)"

// valuesDelete deletes the visit values of a site's (?1) sessions (?2).
const valuesDelete = "DELETE FROM visit_values INDEXED BY visit_values_session WHERE site_id = ?1 AND session_id IN (SELECT value FROM json_each(?2))"

// visitsUpsert replaces the visits of a site's sessions.
var visitsUpsert = sqlquery.Cat("INSERT OR REPLACE INTO visits (", strings.Join(sqlquery.VisitColumns, ", "), ") ",
	sqlquery.VisitsSQL(dialect{}, sqlquery.Frag{SQL: sessionsWhere}))

// valueColumns are the columns of visit_values in the order valuesSQL
// selects them.
const valueColumns = "site_id, dim, start_ts, session_id, value, visitor_id, pageviews, events, bounce, duration, engaged, depth"

// valuesSQL returns the visit values of the events where holds, completed
// from their visits rows.
func valuesSQL(where string) string {
	return sqlquery.Cat("SELECT x.site_id, x.dim, v.start_ts, x.session_id, x.value, v.visitor_id, x.pageviews, x.events, ",
		"(CASE WHEN v.pageviews = 1 AND v.events = 0 THEN 1 ELSE 0 END), ",
		sqlquery.Duration(dialect{}, "v.start_ts", "v.end_ts", "v.engaged"), ", x.engaged, x.depth FROM (",
		sqlquery.VisitValuesSQL(dialect{}, sqlquery.Frag{SQL: where}),
		") AS x JOIN visits AS v ON v.site_id = x.site_id AND v.session_id = x.session_id").SQL
}

// valuesInsert writes the visit values of a site's sessions.
var valuesInsert = "INSERT INTO visit_values (" + valueColumns + ") " + valuesSQL(sessionsWhere)

// upsertVisits replaces the visits and visit values of a site's sessions (a
// JSON array of ids), and their share of the rollups: the new one less the
// old one is added (see rollup.go).
func upsertVisits(ctx context.Context, tx *sql.Tx, site, ids string) error {
	for _, stmt := range oldClear {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	for _, stmt := range oldRollup {
		if _, err := tx.ExecContext(ctx, stmt, site, ids); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, visitsUpsert.SQL, site, ids); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, valuesDelete, site, ids); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, valuesInsert, site, ids); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, sessionsRollup, site, ids); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, emptyRollups, site)
	return err
}

func validate(ev *event.Event) error {
	switch {
	case ev.ID == "":
		return errors.New("missing id")
	case ev.SiteID == "":
		return errors.New("missing site id")
	case !event.ValidType(ev.Type):
		return fmt.Errorf("unknown type %q", ev.Type)
	case ev.Time.IsZero():
		return errors.New("missing time")
	case !finite(ev.Latitude) || !finite(ev.Longitude):
		return errors.New("coordinates are not finite numbers")
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// idMask keeps the low 63 bits so the hashes fit SQLite's signed integers.
const idMask = 1<<63 - 1

func appendRow(args []any, ev *event.Event) ([]any, error) {
	props := "{}"
	if len(ev.Props) > 0 {
		b, err := json.Marshal(ev.Props)
		if err != nil {
			return args, err
		}
		props = string(b)
	}
	entry := 0
	if ev.Entry {
		entry = 1
	}
	return append(args,
		ev.ID, ev.Time.UnixMilli(), ev.SiteID, ev.Type, ev.Name, props,
		ev.Hostname, ev.Pathname, ev.Title,
		ev.ReferrerHost, ev.Channel, ev.UTMSource, ev.UTMMedium, ev.UTMCampaign, ev.UTMTerm, ev.UTMContent,
		ev.Country, ev.Region, ev.City, ev.Latitude, ev.Longitude,
		ev.Device, ev.Browser, ev.OS, ev.ScreenWidth,
		int64(ev.VisitorID&idMask), int64(ev.SessionID&idMask), entry, ev.Engaged, ev.Scroll, ev.RevenueAmount, ev.RevenueCurrency,
	), nil
}

// classify marks the SQLite errors that a retry cannot fix as permanent;
// everything else (busy, I/O, disk full, context) stays retryable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
			return store.PermanentError(fmt.Errorf("sqlitestore: %w", err))
		}
	}
	return fmt.Errorf("sqlitestore: %w", err)
}
