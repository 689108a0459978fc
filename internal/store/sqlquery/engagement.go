package sqlquery

import (
	"context"
	"fmt"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// engagementSQL returns the query of the engagement sums of the given pages
// among q's visits (see store.Engagement): pathname, engaged, depth,
// reported. A visit's deepest scroll is the largest its pings and leaves on
// the page reported; a visit reporting none (0, from trackers that measure
// no scroll) adds nothing to the depth.
func engagementSQL(d Dialect, q store.Query, pages []string) Frag {
	g := newGen(d, q)
	vals := make([]Frag, len(pages))
	for i, p := range pages {
		vals[i] = Arg(p)
	}
	perVisit := Cat("SELECT session_id, pathname, ", d.Sum("engaged"), " AS eng, ", d.Int("max(scroll)"), " AS depth FROM events WHERE ",
		g.rowsBase(), " AND type IN ('ping', 'leave') AND pathname IN (", Join(vals, ", "), ")",
		" AND session_id IN (SELECT session_id FROM (", g.sessions(), ") AS v) GROUP BY session_id, pathname")
	return Cat("SELECT pathname, ", d.Sum("eng"), ", ", d.Sum("depth"), ", ", d.Int(d.CountIf("depth > 0")),
		" FROM (", perVisit, ") AS e GROUP BY pathname")
}

// withEngagement sets the time on page and scroll depth of a page
// breakdown's rows; other breakdowns pass through.
func (qr *Querier) withEngagement(ctx context.Context, q store.Query, dim store.Dimension, b store.Breakdown) (store.Breakdown, error) {
	if dim != store.DimPage || len(b.Rows) == 0 {
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
