package sqlquery

import (
	"context"
	"fmt"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// engagementSQL returns the query of the engagement sums of the given pages
// among q's visits (see store.Engagement): pathname, engaged, depth,
// reported. It reads the sums each visit keeps per page in visit_values
// (VisitValuesSQL), weighted as the breakdowns read them; a visit that
// reported no scroll on the page (depth 0) adds nothing to the depth.
func engagementSQL(d Dialect, q store.Query, pages []string) Frag {
	g := newGen(d, q)
	vals := make([]Frag, len(pages))
	for i, p := range pages {
		vals[i] = Arg(p)
	}
	where := Cat("site_id = ", Arg(q.SiteID), " AND dim = ", Arg(string(store.DimPage)),
		" AND start_ts >= ", d.Time(q.From), " AND start_ts < ", d.Time(q.To), " AND value IN (", Join(vals, ", "), ")")
	if len(q.Filters) > 0 {
		where = Cat(where, " AND session_id IN (SELECT session_id FROM (", g.sessions(), ") AS v)")
	}
	weight := ""
	if g.w = d.Weight() != ""; g.w {
		weight = ", " + d.Weight() + " AS w"
	}
	rows := Cat("SELECT value, engaged, depth", weight, " FROM visit_values WHERE ", where)
	return Cat("SELECT value, ", g.wsum("engaged"), ", ", g.wsum("depth"), ", ",
		g.wsum("(CASE WHEN depth > 0 THEN 1 ELSE 0 END)"), " FROM (", rows, ") AS r GROUP BY value")
}

// withEngagement sets the time on page and scroll depth of a page
// breakdown's rows unless the breakdown read them (engaged); other
// breakdowns pass through.
func (qr *Querier) withEngagement(ctx context.Context, q store.Query, dim store.Dimension, engaged bool, b store.Breakdown) (store.Breakdown, error) {
	if dim != store.DimPage || engaged || len(b.Rows) == 0 {
		return b, nil
	}
	pages := make([]string, len(b.Rows))
	for i, r := range b.Rows {
		pages[i] = r.Value
	}
	sums := make(map[string]store.Engagement, len(pages))
	err := qr.each(ctx, engagementSQL(qr.Dialect, q, pages), func(r Rows) error {
		var page string
		var e store.Engagement
		if err := r.Scan(&page, &e.Engaged, &e.Depth, &e.Reported); err != nil {
			return err
		}
		sums[page] = e
		return nil
	})
	if err != nil {
		return store.Breakdown{}, fmt.Errorf("breakdown engagement: %w", err)
	}
	for i := range b.Rows {
		sums[b.Rows[i].Value].SetOn(&b.Rows[i])
	}
	return b, nil
}
