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
// breakdowns read a row per hour and value instead of every visit of the
// range. Their sums are those of the rows they roll up; their visitors are
// a merged uniq state, which also keeps the visitor of a visit whose start
// moved to another hour in the hour it left.

// rolledUp are the breakdowns that rollup_hours holds, by their dim there.
var rolledUp = map[store.Dimension]bool{store.DimPage: true, store.DimEventName: true, store.DimEntryPage: true}

// fromRollups reports whether q is answered from the rollups: they are
// built, q is valid, has no filters and its range is whole hours (in UTC,
// so in every zone whose offset is whole hours).
func (s *Store) fromRollups(q store.Query) bool {
	return s.rollups.Load() && q.Validate() == nil && len(q.Filters) == 0 &&
		q.From.Unix()%3600 == 0 && q.To.Unix()%3600 == 0
}

// wholeHours reports whether each bucket of b is made of whole hours.
func wholeHours(b *store.Buckets) bool {
	if b.Interval == store.IntervalMinute {
		return false
	}
	for _, seg := range b.Segments {
		if seg.Until%3600 != 0 || seg.Offset%3600 != 0 {
			return false
		}
	}
	for _, bound := range b.MonthBounds {
		if bound%3600 != 0 {
			return false
		}
	}
	return true
}

// rollupSums are the columns of store.Totals merged from the rollup rows.
const rollupSums = "toInt64(uniqMerge(visitors_uniq)) AS n_visitors, sumMerge(visits_sum) AS n_visits, " +
	"sumMerge(pageviews_sum), sumMerge(events_sum), sumMerge(bounces_sum), sumMerge(duration_sum)"

// rollupWhere selects the rollup rows of a dimension ("" for the visits)
// in q's range.
func rollupWhere(q store.Query, dim store.Dimension) sqlquery.Frag {
	d := dialect{}
	return sqlquery.Cat("site_id = ", sqlquery.Arg(q.SiteID), " AND dim = ", sqlquery.Arg(string(dim)),
		" AND hour >= ", d.Time(q.From), " AND hour < ", d.Time(q.To))
}

func (s *Store) rollupOverview(ctx context.Context, q store.Query) (store.Overview, error) {
	var t store.Totals
	f := sqlquery.Cat("SELECT ", rollupSums, " FROM rollup_hours WHERE ", rollupWhere(q, ""))
	err := newQuerier(s.conn).Each(ctx, f, func(r sqlquery.Rows) error {
		return r.Scan(&t.Visitors, &t.Visits, &t.Pageviews, &t.Events, &t.Bounces, &t.Duration)
	})
	if err != nil {
		return store.Overview{}, fmt.Errorf("overview: %w", err)
	}
	if t.Visits == 0 {
		t.Visitors = 0 // only replaced visits' visitors are left
	}
	return t.Overview(), nil
}

func (s *Store) rollupTimeseries(ctx context.Context, q store.Query, b *store.Buckets) ([]store.Point, error) {
	key := sqlquery.BucketKey(dialect{}, b, "toInt64(toUInt32(hour))")
	f := sqlquery.Cat("SELECT toInt64(", key, ") AS k, ", rollupSums, " FROM rollup_hours WHERE ", rollupWhere(q, ""),
		" GROUP BY k HAVING n_visits > 0")
	totals := map[int64]store.Totals{}
	err := newQuerier(s.conn).Each(ctx, f, func(r sqlquery.Rows) error {
		var k int64
		var t store.Totals
		if err := r.Scan(&k, &t.Visitors, &t.Visits, &t.Pageviews, &t.Events, &t.Bounces, &t.Duration); err != nil {
			return err
		}
		totals[k] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("timeseries: %w", err)
	}
	return b.Fill(totals), nil
}

// rollupBreakdown is a breakdown of one of rolledUp, with the engagement
// of each page for the page breakdown.
func (s *Store) rollupBreakdown(ctx context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	qr := newQuerier(s.conn)
	where := rollupWhere(q, dim)
	engaged := dim == store.DimPage
	cols := ""
	if engaged {
		cols = ", sumMerge(engaged_sum), sumMerge(depth_sum), sumMerge(reported_sum)"
	}
	// One row past the page tells whether there are more values.
	page := sqlquery.Cat("SELECT value, ", rollupSums, cols, " FROM rollup_hours WHERE ", where,
		" GROUP BY value HAVING n_visits > 0 ORDER BY n_visitors DESC, value ASC LIMIT ",
		fmt.Sprint(limit+1), " OFFSET ", fmt.Sprint(offset))
	out := store.Breakdown{Rows: []store.Row{}}
	err := qr.Each(ctx, page, func(r sqlquery.Rows) error {
		var v string
		var t store.Totals
		var e store.Engagement
		dest := []any{&v, &t.Visitors, &t.Visits, &t.Pageviews, &t.Events, &t.Bounces, &t.Duration}
		if engaged {
			dest = append(dest, &e.Engaged, &e.Depth, &e.Reported)
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		row := t.Row(v)
		if engaged {
			e.SetOn(&row)
		}
		out.Rows = append(out.Rows, row)
		return nil
	})
	if err != nil {
		return store.Breakdown{}, fmt.Errorf("breakdown: %w", err)
	}
	if len(out.Rows) <= limit && (len(out.Rows) > 0 || offset == 0) {
		out.Total = offset + len(out.Rows)
		return out, nil
	}
	out.Rows = out.Rows[:min(len(out.Rows), limit)]
	count := sqlquery.Cat("SELECT toInt64(count()) FROM (SELECT value FROM rollup_hours WHERE ", where,
		" GROUP BY value HAVING sumMerge(visits_sum) > 0)")
	err = qr.Each(ctx, count, func(r sqlquery.Rows) error {
		var n int64
		err := r.Scan(&n)
		out.Total = int(n)
		return err
	})
	if err != nil {
		return store.Breakdown{}, fmt.Errorf("breakdown count: %w", err)
	}
	return out, nil
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
