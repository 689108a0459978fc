package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
)

// The rollups table holds, per site and UTC hour (slot, the unix
// milliseconds of its start), the sums of the visits that started in the
// hour: all of them (dim ''), and by the value of each of rollupDims, with
// their visitors as a counted set (see uniq.go). Insert keeps them up in
// the transaction that replaces the visits of a batch's sessions: it takes
// away the old visits' share and adds the new ones', so a redelivered batch
// changes nothing and a crash rolls both back. The unfiltered views over
// whole hours read them instead of every visit of the range.

// slot is the width of a rollup slot in milliseconds: a UTC hour.
const (
	slot       = 3600 * 1000
	slotMillis = "3600000"
)

// rollupDims are the breakdowns the rollups hold: the visits' session
// dimensions, then those of visit_values (sqlquery.ValueDims).
var rollupDims = []store.Dimension{
	store.DimEntryPage, store.DimExitPage, store.DimReferrer, store.DimChannel,
	store.DimUTMSource, store.DimUTMMedium, store.DimUTMCampaign, store.DimUTMTerm, store.DimUTMContent,
	store.DimCountry, store.DimRegion, store.DimCity, store.DimDevice, store.DimBrowser, store.DimOS,
	store.DimPage, store.DimEventName,
}

// rollupColumns are the columns of rollups in the order rollupSQL selects them.
const rollupColumns = "site_id, dim, slot, value, visits, pageviews, events, bounces, duration, engaged, depth, reported, visitors"

// rollupSQL selects what the rows of visits and of values (of visit_values,
// rollupDims only), each with a sign column (1 to add, -1 to take away),
// add to the rollups, per dim, slot and value, leaving out the keys they
// do not change (a visit that goes on in the same hour and value adds
// nothing to its visitors). Both are read once: the per-dim groups read
// them from memory.
func rollupSQL(visits, values string) string {
	s := "(start_ts / " + slotMillis + " * " + slotMillis + ")"
	sums := " AS slot, sum(sign) AS visits, sum(sign * pageviews) AS pageviews, sum(sign * events) AS events, "
	group := func(dim, value string) string {
		by := "slot"
		if value != "''" {
			by += ", " + value
		}
		return "SELECT site_id, '" + dim + "' AS dim, " + s + sums + " " + value + " AS value, " +
			"sum(CASE WHEN pageviews = 1 AND events = 0 THEN sign ELSE 0 END) AS bounces, sum(sign * " +
			sqlquery.Duration(dialect{}, "start_ts", "end_ts", "engaged") + ") AS duration, 0 AS engaged, 0 AS depth, " +
			"0 AS reported, uniq_delta(visitor_id, sign) AS visitors FROM v GROUP BY " + by
	}
	parts := []string{group("", "''")}
	for _, dim := range rollupDims {
		if col := dim.VisitColumn(); col != "" {
			parts = append(parts, group(string(dim), col))
		}
	}
	parts = append(parts, "SELECT site_id, dim, "+s+sums+" value, sum(sign * bounce) AS bounces, sum(sign * duration) AS duration, "+
		"sum(sign * engaged) AS engaged, sum(sign * depth) AS depth, sum(CASE WHEN depth > 0 THEN sign ELSE 0 END) AS reported, "+
		"uniq_delta(visitor_id, sign) AS visitors FROM x GROUP BY dim, slot, value")
	return "SELECT " + rollupColumns + " FROM (WITH v AS MATERIALIZED (" + visits + "), x AS MATERIALIZED (" + values + ") " +
		strings.Join(parts, " UNION ALL ") + ") WHERE visits != 0 OR pageviews != 0 OR events != 0 OR bounces != 0 OR " +
		"duration != 0 OR engaged != 0 OR depth != 0 OR reported != 0 OR length(visitors) > 0"
}

// valueDims is the SQL list of the rollupDims kept in visit_values.
var valueDims = func() string {
	var dims []string
	for _, dim := range rollupDims {
		if dim.VisitColumn() == "" {
			dims = append(dims, "'"+string(dim)+"'")
		}
	}
	return strings.Join(dims, ", ")
}()

// The rows of a site's (?1) sessions (a JSON array of ids, ?2), looked up
// by session: without statistics the planner would scan all of the site's
// rows instead.
var (
	sessionVisits = "SELECT r.* FROM json_each(?2) AS j CROSS JOIN visits AS r INDEXED BY visits_session " +
		"WHERE r.site_id = ?1 AND r.session_id = j.value"
	sessionValues = "SELECT r.* FROM json_each(?2) AS j CROSS JOIN visit_values AS r INDEXED BY visit_values_session " +
		"WHERE r.site_id = ?1 AND r.session_id = j.value AND r.dim IN (" + valueDims + ")"
)

// rangeWhere selects a site's (?1) rows that started in [?2, ?4).
const rangeWhere = "site_id = ?1 AND start_ts >= ?2 AND start_ts < ?4"

// rollupAdd returns the statement that adds rollupSQL(visits, values) to
// the rollups.
func rollupAdd(visits, values string) string {
	return "INSERT INTO rollups (" + rollupColumns + ") SELECT * FROM (" + rollupSQL(visits, values) + ") WHERE true " +
		"ON CONFLICT (site_id, dim, slot, value) DO UPDATE SET visits = visits + excluded.visits, " +
		"pageviews = pageviews + excluded.pageviews, events = events + excluded.events, bounces = bounces + excluded.bounces, " +
		"duration = duration + excluded.duration, engaged = engaged + excluded.engaged, depth = depth + excluded.depth, " +
		"reported = reported + excluded.reported, visitors = uniq_add(visitors, excluded.visitors)"
}

// A batch's upkeep: the old rows of its sessions are kept aside in temp
// tables of the writer's connection before they are replaced (oldClear, oldRollup),
// then the new rows less the old ones go into the rollups in one statement
// (sessionsRollup), so each key is written once.
var (
	oldClear = []string{
		"CREATE TEMP TABLE IF NOT EXISTS old_visits AS SELECT * FROM visits WHERE false",
		"CREATE TEMP TABLE IF NOT EXISTS old_values AS SELECT * FROM visit_values WHERE false",
		"DELETE FROM temp.old_visits",
		"DELETE FROM temp.old_values",
	}
	oldRollup      = []string{"INSERT INTO temp.old_visits " + sessionVisits, "INSERT INTO temp.old_values " + sessionValues}
	sessionsRollup = rollupAdd("SELECT -1 AS sign, * FROM temp.old_visits UNION ALL SELECT 1 AS sign, * FROM ("+sessionVisits+")",
		"SELECT -1 AS sign, * FROM temp.old_values UNION ALL SELECT 1 AS sign, * FROM ("+sessionValues+")")
	// rangeRollup adds (?3 = 1) or takes away (-1) the share of a site's
	// (?1) visits that started in [?2, ?4).
	rangeRollup = rollupAdd("SELECT ?3 AS sign, * FROM visits WHERE "+rangeWhere,
		"SELECT ?3 AS sign, * FROM visit_values WHERE dim IN ("+valueDims+") AND "+rangeWhere)
	// emptyRollups deletes a site's (?1) rows left without visits.
	emptyRollups = "DELETE FROM rollups WHERE site_id = ?1 AND visits = 0"
)

// rollupDelete deletes the rollups of a site's (?1) slots in [?2, ?3).
var rollupDelete = func() string {
	dims := []string{"''"}
	for _, dim := range rollupDims {
		dims = append(dims, "'"+string(dim)+"'")
	}
	return "DELETE FROM rollups WHERE site_id = ?1 AND dim IN (" + strings.Join(dims, ", ") + ") AND slot >= ?2 AND slot < ?3"
}()

// rebuildRollups rebuilds a site's rollups of the slots in [from, to) from
// its visits.
func rebuildRollups(ctx context.Context, tx *sql.Tx, site string, from, to int64) error {
	if _, err := tx.ExecContext(ctx, rollupDelete, site, from, to); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, rangeRollup, site, from, 1, to)
	return err
}

// backfillRollups builds the rollups of the visits stored before the
// rollups existed (the backfill's range of start times), an hour of every
// site at a time, each step in its own transaction with its progress, so
// the flusher's inserts wait at most one step. Until it is done the views
// read the visits: the hours not built yet hold only what inserts added and
// took away since. Each step rebuilds its hour, which makes those right.
func (s *Store) backfillRollups(ctx context.Context, log *slog.Logger) {
	var next, end int64
	err := s.wdb.QueryRowContext(ctx, "SELECT next_row, end_row FROM backfill WHERE name = 'rollups'").Scan(&next, &end)
	if err != nil || next > end {
		if err == nil || err == sql.ErrNoRows {
			s.rollups.Store(true)
		} else if ctx.Err() == nil {
			log.Error("analytics: rollups backfill", "error", err)
		}
		return
	}
	sites, err := s.sites(ctx)
	if err != nil {
		log.Error("analytics: rollups backfill stopped; it resumes at the next start", "error", err)
		return
	}
	first := next - next%slot
	log.Info("analytics: building rollups from stored visits", "hours", (end-first)/slot+1)
	started, lastLog := time.Now(), time.Now()
	for next = first; next <= end; next += slot {
		if err := s.backfillRollupStep(ctx, sites, next); err != nil {
			if ctx.Err() == nil {
				log.Error("analytics: rollups backfill stopped; it resumes at the next start", "error", err)
			}
			return
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			log.Info("analytics: building rollups", "done", fmt.Sprintf("%.0f%%", 100*float64(next+slot-first)/float64(end-first+1)))
		}
	}
	s.rollups.Store(true)
	log.Info("analytics: rollups built", "took", time.Since(started).Round(time.Millisecond))
}

// sites returns the sites that have visits.
func (s *Store) sites(ctx context.Context) ([]string, error) {
	rows, err := s.wdb.QueryContext(ctx, "SELECT DISTINCT site_id FROM visits")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var sites []string
	for rows.Next() {
		var site string
		if err := rows.Scan(&site); err != nil {
			return nil, err
		}
		sites = append(sites, site)
	}
	return sites, rows.Err()
}

// backfillRollupStep rebuilds the sites' rollups of the slot that starts at
// from and moves the backfill past it, in one transaction.
func (s *Store) backfillRollupStep(ctx context.Context, sites []string, from int64) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, site := range sites {
		if err := rebuildRollups(ctx, tx, site, from, from+slot); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE backfill SET next_row = ? WHERE name = 'rollups'", from+slot); err != nil {
		return err
	}
	return tx.Commit()
}

// fromRollups reports whether q is answered from the rollups: they are
// built and q is store.Query.Rollable.
func (s *Store) fromRollups(q store.Query) bool {
	return s.rollups.Load() && q.Rollable()
}

// rollupRows restricts the rollups to q's site, dim and range.
func rollupRows(q store.Query, dim store.Dimension) sqlquery.Frag {
	d := dialect{}
	return sqlquery.Cat("FROM rollups WHERE site_id = ", sqlquery.Arg(q.SiteID), " AND dim = ", sqlquery.Arg(string(dim)),
		" AND slot >= ", d.Time(q.From), " AND slot < ", d.Time(q.To))
}

// rollupTotals are the columns of store.Totals from a group of rollups.
const rollupTotals = "uniq_merge(visitors), coalesce(sum(visits), 0), coalesce(sum(pageviews), 0), coalesce(sum(events), 0), " +
	"coalesce(sum(bounces), 0), coalesce(sum(duration), 0)"

func (s *Store) rollupOverview(ctx context.Context, q store.Query) (store.Overview, error) {
	return newQuerier(s.db).Totals(ctx, sqlquery.Cat("SELECT ", rollupTotals, " ", rollupRows(q, "")))
}

func (s *Store) rollupTimeseries(ctx context.Context, q store.Query, b *store.Buckets) ([]store.Point, error) {
	return newQuerier(s.db).Points(ctx, sqlquery.Cat("SELECT ", sqlquery.BucketKey(dialect{}, b, "(slot / 1000)"), " AS k, ",
		rollupTotals, " ", rollupRows(q, ""), " GROUP BY k"), b)
}

// rollupBreakdown is a breakdown of one of rollupDims, with the engagement
// of each page for the page breakdown.
func (s *Store) rollupBreakdown(ctx context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	from := rollupRows(q, dim)
	engaged := dim == store.DimPage
	sums := ""
	if engaged {
		sums = ", sum(engaged), sum(depth), sum(reported)"
	}
	// One row past the page tells whether there are more values.
	page := sqlquery.Cat("SELECT value, uniq_merge(visitors) AS n_visitors, sum(visits), sum(pageviews), sum(events), ",
		"sum(bounces), sum(duration)", sums, " ", from, " GROUP BY value ORDER BY n_visitors DESC, value ASC LIMIT ",
		fmt.Sprint(limit+1), " OFFSET ", fmt.Sprint(offset))
	count := sqlquery.Cat("SELECT uniq_exact(value) ", from)
	return newQuerier(s.db).Page(ctx, page, count, engaged, limit, offset)
}
