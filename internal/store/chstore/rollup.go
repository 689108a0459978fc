package chstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore/schema"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
)

// The per-hour rollups (rollup_hours, kept by the materialized views of
// schema.Rollups) answer the unfiltered views over whole hours: the
// overview, the time series and the page, custom event and entry page
// breakdowns add up a row per hour and value instead of every visit of the
// range, and read only the visitor ids of those visits for their distinct
// count. The sums are exact; the visitors are approximate, as on the rows.

// rolledUp are the breakdowns that rollup_hours holds, by their dim there.
var rolledUp = map[store.Dimension]bool{store.DimPage: true, store.DimEventName: true, store.DimEntryPage: true}

// fromRollups reports whether q is answered from the rollups: they are
// built and q is store.Query.Rollable.
func (s *Store) fromRollups(q store.Query) bool {
	return s.rollups.Load() && q.Rollable()
}

// rollupSums are the sums of store.Totals but the visitors, from the
// rollup rows.
const rollupSums = "sum(visits_sum) AS n_visits, sum(pageviews_sum) AS n_pageviews, sum(events_sum) AS n_events, " +
	"sum(bounces_sum) AS n_bounces, sum(duration_sum) AS n_duration"

// totalsCols are the columns of store.Totals once the visitors are joined.
const totalsCols = "n_visitors, n_visits, n_pageviews, n_events, n_bounces, n_duration"

// rollupWhere selects the rollup rows of a dimension ("" for the visits)
// in q's range.
func rollupWhere(q store.Query, dim store.Dimension) sqlquery.Frag {
	d := dialect{}
	return sqlquery.Cat("site_id = ", sqlquery.Arg(q.SiteID), " AND dim = ", sqlquery.Arg(string(dim)),
		" AND hour >= ", d.Time(q.From), " AND hour < ", d.Time(q.To))
}

// visitors is the distinct visitors of the visits rolled up under dim, per
// key (an expression of the table's row), as columns k and n_visitors, by
// uniq (dialect.Uniq or dialect.GroupUniq). It reads the rows as stored, as
// the visits' own queries do.
func visitors(q store.Query, dim store.Dimension, key func(value string) string, uniq func(expr string) string) sqlquery.Frag {
	d := dialect{}
	table, value, where := "visits", "", sqlquery.Cat("site_id = ", sqlquery.Arg(q.SiteID))
	switch dim {
	case "":
	case store.DimEntryPage:
		value = dim.VisitColumn()
	default: // the values of visit_values
		table, value = "visit_values", "value"
		where = sqlquery.Cat(where, " AND dim = ", sqlquery.Arg(string(dim)))
	}
	return sqlquery.Cat("SELECT ", key(value), " AS k, ", uniq("visitor_id"), " AS n_visitors FROM ", table,
		" WHERE ", where, " AND start_ts >= ", d.Time(q.From), " AND start_ts < ", d.Time(q.To), " GROUP BY k")
}

func (s *Store) rollupOverview(ctx context.Context, q store.Query) (store.Overview, error) {
	all := func(string) string { return "0" }
	return newQuerier(s.conn).Totals(ctx, sqlquery.Cat("SELECT ", totalsCols, " FROM (SELECT toUInt8(0) AS k, ", rollupSums,
		" FROM rollup_hours WHERE ", rollupWhere(q, ""), ") AS s ANY LEFT JOIN (", visitors(q, "", all, dialect{}.Uniq), ") AS v USING k"))
}

func (s *Store) rollupTimeseries(ctx context.Context, q store.Query, b *store.Buckets) ([]store.Point, error) {
	key := func(secs string) string { return "toInt64(" + sqlquery.BucketKey(dialect{}, b, secs) + ")" }
	uniq := dialect{}.GroupUniq
	if b.Interval == store.IntervalHour {
		uniq = dialect{}.Uniq
	}
	f := sqlquery.Cat("SELECT k, ", totalsCols, " FROM (SELECT ", key("toInt64(toUInt32(hour))"), " AS k, ", rollupSums,
		" FROM rollup_hours WHERE ", rollupWhere(q, ""), " GROUP BY k HAVING n_visits > 0) AS s ANY LEFT JOIN (",
		visitors(q, "", func(string) string { return key("toInt64(toUInt32(start_ts))") }, uniq), ") AS v USING k")
	return newQuerier(s.conn).Points(ctx, f, b)
}

// rollupBreakdown is a breakdown of one of rolledUp, with the engagement
// of each page for the page breakdown. The values are joined by a 64-bit
// hash, as the breakdowns of the rows group them (see dialect.ValueKey).
func (s *Store) rollupBreakdown(ctx context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	qr := newQuerier(s.conn)
	where := rollupWhere(q, dim)
	engaged := dim == store.DimPage
	sums, cols := rollupSums, ""
	if engaged {
		sums += ", sum(engaged_sum) AS n_engaged, sum(depth_sum) AS n_depth, sum(reported_sum) AS n_reported"
		cols = ", n_engaged, n_depth, n_reported"
	}
	hash := func(value string) string { return "cityHash64(" + value + ")" }
	// One row past the page tells whether there are more values.
	page := sqlquery.Cat("SELECT value, ", totalsCols, cols, " FROM (SELECT cityHash64(value) AS k, * FROM (SELECT value, ", sums,
		" FROM rollup_hours WHERE ", where, " GROUP BY value HAVING n_visits > 0)) AS s ANY LEFT JOIN (", visitors(q, dim, hash, dialect{}.GroupUniq),
		") AS v USING k ORDER BY n_visitors DESC, value ASC LIMIT ", fmt.Sprint(limit+1), " OFFSET ", fmt.Sprint(offset))
	count := sqlquery.Cat("SELECT toInt64(count()) FROM (SELECT value FROM rollup_hours WHERE ", where,
		" GROUP BY value HAVING sum(visits_sum) > 0)")
	return qr.Page(ctx, page, count, engaged, limit, offset)
}

// pendingRollups returns the days whose rollups are still to be built
// from the rows stored before the rollups existed (rollup_days).
func (s *Store) pendingRollups(ctx context.Context) ([]time.Time, error) {
	rows, err := s.conn.Query(ctx, "SELECT day FROM rollup_days GROUP BY day HAVING max(done) = 0 ORDER BY day")
	if err != nil {
		return nil, classify("read rollup days", err)
	}
	defer rows.Close()
	var days []time.Time
	for rows.Next() {
		var day time.Time
		if err := rows.Scan(&day); err != nil {
			return nil, classify("read rollup days", err)
		}
		days = append(days, day)
	}
	return days, classify("read rollup days", rows.Err())
}

// backfillRollups builds the rollups of the pending days, oldest first, and
// turns the rollup path on once none is left. A restart resumes with the
// first day not done.
func (s *Store) backfillRollups(ctx context.Context, days []time.Time, log *slog.Logger) {
	if len(days) == 0 {
		return
	}
	log.Info("chstore: building rollups from stored visits", "days", len(days))
	started := time.Now()
	for i, day := range days {
		if err := s.rollupDay(ctx, day); err != nil {
			if ctx.Err() == nil {
				log.Error("chstore: rollups backfill stopped; it resumes at the next start", "day", day.Format(time.DateOnly), "error", err)
			}
			return
		}
		log.Info("chstore: building rollups", "day", day.Format(time.DateOnly), "done", fmt.Sprintf("%d/%d", i+1, len(days)))
	}
	s.rollups.Store(true)
	log.Info("chstore: rollups built", "took", time.Since(started).Round(time.Millisecond))
}

// rollupDay builds the rollups of the visits that started on day (UTC) and
// marks it done. While a day is pending the views skip its rows, so every
// row of it is counted here; holding visitsMu keeps the store's own writes
// out until it is marked. A rollup whose rows of the day are already there
// (written before a crash) is not built twice: each is one insert.
func (s *Store) rollupDay(ctx context.Context, day time.Time) error {
	s.visitsMu.Lock()
	defer s.visitsMu.Unlock()
	for _, r := range schema.Rollups {
		var n uint64
		err := s.conn.QueryRow(ctx, "SELECT count() FROM rollup_hours WHERE toDate(hour, 'UTC') = toDate(toDateTime(?), 'UTC') AND "+r.Dims,
			day.Unix()).Scan(&n)
		if err != nil {
			return classify("read rollups", err)
		}
		if n > 0 {
			continue
		}
		err = s.conn.Exec(ctx, "INSERT INTO rollup_hours ("+schema.RollupColumns+") "+
			r.Query("toDate(start_ts, 'UTC') = toDate(toDateTime(?), 'UTC')"), day.Unix())
		if err != nil {
			return classify("build "+r.View, err)
		}
	}
	err := s.conn.Exec(ctx, "INSERT INTO rollup_days (day, done) SELECT toDate(toDateTime(?), 'UTC'), toUInt8(1)", day.Unix())
	return classify("mark rollup day", err)
}
