package schema

// Rollup is one materialized view that feeds rollup_hours (schema step 9)
// from the rows inserted into a table: the sums of the visits' rows per
// site, dimension, value and hour of the visit's start.
type Rollup struct {
	// View names the materialized view and Table the table it reads.
	View, Table string
	// Dims is the condition on rollup_hours that selects the rows it writes.
	Dims string
	// cols are its columns, as rollup_hours names them; groupBy their keys.
	cols, groupBy string
}

// Query returns the rollup rows of the table's rows where cond holds.
func (r Rollup) Query(cond string) string {
	return "SELECT " + r.cols + " FROM " + r.Table + " WHERE " + cond + " GROUP BY " + r.groupBy
}

// RollupColumns are the columns of rollup_hours, in the order of a Query.
const RollupColumns = "site_id, dim, value, hour, visits_sum, pageviews_sum, events_sum, bounces_sum, duration_sum, " +
	"engaged_sum, depth_sum, reported_sum"

const (
	rollupHour = "toDateTime(intDiv(toUInt32(start_ts), 3600) * 3600) AS hour"

	// A visit's replaced row and its cancelling copy (sign -1) both reach
	// the view, so the sums are weighted by sign and stay exact.
	rollupVisitSums = "sum(toInt64(sign)) AS visits_sum, sum(toInt64(sign * pageviews)) AS pageviews_sum, " +
		"sum(toInt64(sign * events)) AS events_sum, sum(toInt64(sign * (pageviews = 1 AND events = 0))) AS bounces_sum, " +
		"sum(toInt64(sign * if(engaged > 0, intDiv(engaged, 1000), toInt64(toUInt32(end_ts)) - toInt64(toUInt32(start_ts))))) AS duration_sum, " +
		"toInt64(0) AS engaged_sum, toInt64(0) AS depth_sum, toInt64(0) AS reported_sum"
)

// Rollups are the views of step 9. They are part of a shipped step: a new
// rollup is a new view in a new step.
var Rollups = []Rollup{
	{
		View: "rollup_visits", Table: "visits", Dims: "dim = ''",
		cols:    "site_id, '' AS dim, '' AS value, " + rollupHour + ", " + rollupVisitSums,
		groupBy: "site_id, hour",
	},
	{
		View: "rollup_entry_pages", Table: "visits", Dims: "dim = 'entry_page'",
		cols:    "site_id, 'entry_page' AS dim, entry_page AS value, " + rollupHour + ", " + rollupVisitSums,
		groupBy: "site_id, entry_page, hour",
	},
	{
		View: "rollup_values", Table: "visit_values", Dims: "dim NOT IN ('', 'entry_page')",
		cols: "site_id, dim, value, " + rollupHour + ", " +
			"sum(toInt64(sign)) AS visits_sum, sum(toInt64(sign * pageviews)) AS pageviews_sum, " +
			"sum(toInt64(sign * events)) AS events_sum, sum(toInt64(sign * bounce)) AS bounces_sum, " +
			"sum(toInt64(sign * duration)) AS duration_sum, sum(toInt64(sign * engaged)) AS engaged_sum, " +
			"sum(toInt64(sign * depth)) AS depth_sum, sum(toInt64(sign * (depth > 0))) AS reported_sum",
		groupBy: "site_id, dim, value, hour",
	},
}
