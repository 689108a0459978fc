package sqlquery

import (
	"context"
	"errors"
	"fmt"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Rows is what both database/sql and clickhouse-go return from a query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// QueryFunc runs a query with positional (?) arguments.
type QueryFunc func(ctx context.Context, query string, args ...any) (Rows, error)

// Querier implements store.Querier on a SQL store.
type Querier struct {
	Dialect Dialect
	Query   QueryFunc
	// TimedOut, when set, reports whether an error is the database's own
	// time limit (the context's deadline is recognised without it).
	TimedOut func(error) bool
}

var _ store.Querier = (*Querier)(nil)

// each runs f and calls scan for every row.
func (qr *Querier) each(ctx context.Context, f Frag, scan func(Rows) error) error {
	err := func() error {
		rows, err := qr.Query(ctx, f.SQL, f.Args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return rows.Close()
	}()
	if err != nil && (errors.Is(ctx.Err(), context.DeadlineExceeded) || qr.TimedOut != nil && qr.TimedOut(err)) {
		return fmt.Errorf("%w: %w", store.ErrTimeout, err)
	}
	return err
}

// Overview implements store.Querier.
func (qr *Querier) Overview(ctx context.Context, q store.Query) (store.Overview, error) {
	if err := q.Validate(); err != nil {
		return store.Overview{}, err
	}
	return qr.Totals(ctx, overviewSQL(qr.Dialect, q))
}

// Totals runs an overview's query (visitors, visits, pageviews, events,
// bounces, duration) and returns its one row's overview.
func (qr *Querier) Totals(ctx context.Context, f Frag) (store.Overview, error) {
	var t store.Totals
	err := qr.each(ctx, f, func(r Rows) error {
		return r.Scan(&t.Visitors, &t.Visits, &t.Pageviews, &t.Events, &t.Bounces, &t.Duration)
	})
	if err != nil {
		return store.Overview{}, fmt.Errorf("overview: %w", err)
	}
	// Weighted rows can name the visitor of a visit that has left the
	// range while no visit is left in it.
	if t.Visits == 0 {
		t.Visitors = 0
	}
	return t.Overview(), nil
}

// Timeseries implements store.Querier.
func (qr *Querier) Timeseries(ctx context.Context, q store.Query, interval store.Interval) ([]store.Point, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	b, err := store.NewBuckets(q, interval)
	if err != nil {
		return nil, err
	}
	return qr.Points(ctx, timeseriesSQL(qr.Dialect, q, b), b)
}

// Points runs a time series' query (bucket key, then the totals' columns)
// and returns a point per bucket of b, empty buckets included.
func (qr *Querier) Points(ctx context.Context, f Frag, b *store.Buckets) ([]store.Point, error) {
	totals := map[int64]store.Totals{}
	err := qr.each(ctx, f, func(r Rows) error {
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

// Breakdown implements store.Querier.
func (qr *Querier) Breakdown(ctx context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	if err := q.Validate(); err != nil {
		return store.Breakdown{}, err
	}
	if err := dim.Validate(); err != nil {
		return store.Breakdown{}, err
	}
	if err := store.ValidatePage(limit, offset); err != nil {
		return store.Breakdown{}, err
	}
	if dim == store.DimGoal {
		return qr.goalBreakdown(ctx, q, limit, offset)
	}
	// One row past the page tells whether there are more values: when there
	// are none, the total needs no second query.
	pageSQL, countSQL, engaged := breakdownSQL(qr.Dialect, q, dim, limit+1, offset)
	out, err := qr.Page(ctx, pageSQL, countSQL, engaged, limit, offset)
	if err != nil {
		return store.Breakdown{}, err
	}
	return qr.withEngagement(ctx, q, dim, engaged, out)
}

// Page runs a breakdown's query of the rows [offset, offset+limit] (one past
// the page: value, the totals' columns and, when engaged, the engagement's)
// and, only when the page does not tell it, count, the number of values.
func (qr *Querier) Page(ctx context.Context, pageSQL, countSQL Frag, engaged bool, limit, offset int) (store.Breakdown, error) {
	out := store.Breakdown{Rows: []store.Row{}}
	err := qr.each(ctx, pageSQL, func(r Rows) error {
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
	// A page that is not full and not past the end tells the total without
	// counting.
	if len(out.Rows) <= limit && (len(out.Rows) > 0 || offset == 0) {
		out.Total = offset + len(out.Rows)
		return out, nil
	}
	out.Rows = out.Rows[:min(len(out.Rows), limit)]
	err = qr.each(ctx, countSQL, func(r Rows) error {
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
