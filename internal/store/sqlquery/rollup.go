package sqlquery

import (
	"slices"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Slot is the width of a rollup slot in milliseconds: a UTC hour.
// SlotMillis is the same number as SQL text.
const (
	Slot       = 3600 * 1000
	SlotMillis = "3600000"
)

// RollupDims are the breakdown dimensions a store's rollups hold: the
// visits' session dimensions and ValueDims.
var RollupDims = slices.Concat([]store.Dimension{store.DimEntryPage, store.DimExitPage}, visitAttrs, ValueDims)

// Rollup is implemented by a Dialect whose store keeps the rollups table:
// per site and slot of the visits' start (column slot, its start as the
// stores' ts), the visits' sums (visits, pageviews, events, bounces,
// duration, and for pages engaged, depth, reported as in visit_values) and
// the set of their visitors (visitors), all of them under an empty dim
// and value, and by the value of each of RollupDims. A query with no
// filters over whole slots reads it instead of the visits.
type Rollup interface {
	// UniqMerge counts the distinct visitors of the visitor sets it
	// aggregates, exactly.
	UniqMerge(sets string) string
}

// rollup returns the dialect's Rollup when q can read the rollups: no
// filters, a range of whole slots.
func rollup(d Dialect, q store.Query) (Rollup, bool) {
	r, ok := d.(Rollup)
	return r, ok && len(q.Filters) == 0 && q.From.UnixMilli()%Slot == 0 && q.To.UnixMilli()%Slot == 0
}

// rollupRows restricts the rollups to q's site, the dimension and the
// slots of q's range.
func rollupRows(d Dialect, q store.Query, dim string) Frag {
	return Cat("FROM rollups WHERE site_id = ", Arg(q.SiteID), " AND dim = ", Arg(dim),
		" AND slot >= ", d.Time(q.From), " AND slot < ", d.Time(q.To))
}

// rollupSums are the visitors and the sums of a grouping of rollups.
func rollupSums(d Dialect, r Rollup) string {
	return r.UniqMerge("visitors") + ", " + d.Sum("visits") + ", " + d.Sum("pageviews") + ", " + d.Sum("events") + ", " +
		d.Sum("bounces") + ", " + d.Sum("duration")
}

// hourly reports whether the buckets fall on whole slots: every UTC offset
// of the range is whole hours and no bucket is shorter than an hour.
func hourly(b *store.Buckets) bool {
	if b.Interval == store.IntervalMinute {
		return false
	}
	for _, s := range b.Segments {
		if s.Offset%(Slot/1000) != 0 {
			return false
		}
	}
	return true
}
