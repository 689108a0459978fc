// Package sqlquery implements store.Querier once for both SQL stores. The
// queries have the same shape in SQLite and ClickHouse; a Dialect supplies the
// few expressions that differ (time arithmetic, conditional aggregates, custom
// event properties), so the two stores cannot drift apart in what they count.
//
//	q := &sqlquery.Querier{Dialect: myDialect{}, Query: runQuery}
//	ov, err := q.Overview(ctx, store.Query{SiteID: "abc", From: from, To: to})
//
// Nothing from a request is ever spliced into the SQL text: values travel as
// bound parameters (Frag.Args), dimensions map to columns through the closed
// whitelist in package store, and the only other things written into the text
// are integers computed in Go (bucket boundaries and UTC offsets).
//
// Visit-level numbers come from the visits table, which the stores keep up
// as they write events (one row per visit, built by VisitsSQL from the
// visit's events); page- and event-level numbers come from the events. Every
// query starts from the sessions subquery: the visits that started in the
// range and pass the filters, with their counted pageviews and events; see
// store.Querier for the definitions.
package sqlquery

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Frag is SQL text with its bound arguments, in order.
type Frag struct {
	SQL  string
	Args []any
}

// Cat joins strings and Frags into one Frag, keeping the arguments in text
// order.
func Cat(parts ...any) Frag {
	var f Frag
	var sb strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			sb.WriteString(p)
		case Frag:
			sb.WriteString(p.SQL)
			f.Args = append(f.Args, p.Args...)
		default:
			panic(fmt.Sprintf("sqlquery: unexpected part %T", p))
		}
	}
	f.SQL = sb.String()
	return f
}

// Arg is a single bound parameter.
func Arg(v any) Frag { return Frag{SQL: "?", Args: []any{v}} }

// Join joins frags with a separator.
func Join(frags []Frag, sep string) Frag {
	parts := make([]any, 0, 2*len(frags))
	for i, f := range frags {
		if i > 0 {
			parts = append(parts, sep)
		}
		parts = append(parts, f)
	}
	return Cat(parts...)
}

// col is the whitelisted column of a dimension.
func col(d store.Dimension) Frag { return Frag{SQL: d.Column()} }

func num(n int64) string { return strconv.FormatInt(n, 10) }

// Dialect supplies the expressions that differ between the stores.
type Dialect interface {
	// Time is the bound value compared with column ts.
	Time(t time.Time) Frag
	// Secs converts a ts-valued expression (ts, min(ts)) into signed unix
	// seconds.
	Secs(ts string) string
	// Millis is the time of an events row in signed unix milliseconds.
	Millis() string
	// IntDiv divides non-negative integers, truncating.
	IntDiv(a, b string) string
	// CountIf counts the rows where cond holds; AnyIf is 1 when cond holds
	// for some row of the group, else 0. Each uses cond exactly once (cond
	// may contain bound arguments).
	CountIf(cond string) string
	AnyIf(cond string) string
	// Count counts rows; Uniq counts distinct values (exactly below 65,536,
	// within 2% above); Sum sums an integer expression, 0 over no rows. All
	// three are 64-bit signed.
	Count() string
	Uniq(expr string) string
	Sum(expr string) string
	// Int converts an integer expression to a 64-bit signed integer.
	Int(expr string) string
	// MinIf and MaxIf are the smallest and largest string among the rows where
	// cond holds, "" over no rows.
	MinIf(expr, cond string) string
	MaxIf(expr, cond string) string
	// Concat concatenates a unix-milliseconds expression (always 13 digits
	// for the supported range) and a string expression.
	Concat(ms, s string) string
	// Substr returns s from the 1-based byte position pos.
	Substr(s string, pos int) string
	// Case is CASE WHEN conds[i] THEN vals[i] … ELSE last END.
	Case(conds, vals []string, last string) string
	// Contains is true when needle occurs in hay.
	Contains(hay, needle Frag) Frag
	// PropMatch is true when the row has the custom event property key and
	// its value satisfies match; PropValue is that value and PropHas the
	// condition that the row has the key.
	PropMatch(key string, match func(value Frag) Frag) Frag
	PropValue(key string) Frag
	PropHas(key string) Frag
	// JoinUsing joins two subqueries on the column session_id.
	JoinUsing(left, right Frag) Frag
	// LeftJoinUsing left-joins two subqueries on the column session_id;
	// the right side has at most one row per session, and its missing
	// integer columns read as NULL or 0 (the callers coalesce).
	LeftJoinUsing(left, right Frag) Frag
	// Coalesce returns an integer expression, 0 where it is NULL.
	Coalesce(expr string) string
	// ValueKey returns a cheaper expression to group a breakdown's string
	// values by (ClickHouse hashes strings far slower than integers), or ok
	// false to group by the value itself.
	ValueKey(value Frag) (key Frag, ok bool)
	// Visits is the visits table as the queries read it to select visits:
	// one row per visit (ClickHouse reads its collapsing table with FINAL).
	Visits() string
	// Weight is the column that weights the rows of the visits and
	// visit_values tables read as stored, or "" when they hold one row per
	// visit (and value). Sums over the stored rows weighted by it are the
	// sums over the live rows: a replaced row is cancelled by its copy of
	// weight -1 until a merge drops both.
	Weight() string
	// Wildcard is true when value matches pattern, where * matches any
	// run of characters and nothing else is special (see
	// store.MatchPattern).
	Wildcard(value Frag, pattern string) Frag
}

// GroupUniqer is a Dialect whose distinct count has a faster form for the
// visitors of a breakdown's values, each group possibly large; the
// breakdowns use it where the dialect has it, Uniq elsewhere.
type GroupUniqer interface {
	GroupUniq(expr string) string
}

// groupUniq is the distinct count of expr per value of a breakdown.
func groupUniq(d Dialect, expr string) string {
	if gu, ok := d.(GroupUniqer); ok {
		return gu.GroupUniq(expr)
	}
	return d.Uniq(expr)
}

const (
	isPageview = "type = 'pageview'"
	isEvent    = "type = 'event'"
	isCounted  = "type IN ('pageview', 'event')"
)

// VisitColumns are the columns of a visits row, in the order VisitsSQL
// selects them. Both stores name them alike.
var VisitColumns = []string{
	"site_id", "session_id", "visitor_id", "start_ts", "end_ts", "pageviews", "events",
	"entry_page", "exit_page", "referrer_host", "channel",
	"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
	"country", "region", "city", "device", "browser", "os", "engaged",
}

// visitAttrs are the session dimensions after the pages in VisitColumns.
var visitAttrs = []store.Dimension{
	store.DimReferrer, store.DimChannel,
	store.DimUTMSource, store.DimUTMMedium, store.DimUTMCampaign, store.DimUTMTerm, store.DimUTMContent,
	store.DimCountry, store.DimRegion, store.DimCity, store.DimDevice, store.DimBrowser, store.DimOS,
}

// VisitsSQL returns the visits (VisitColumns) of the events where holds,
// one per (site, session) with at least one pageview or custom event: its
// first and last row, its pageviews and custom events, its first and last
// pageview's pathname, the attributes of its first pageview or custom
// event, and its visible time (the engaged milliseconds of its pings and
// leaves). Rows are ordered by their millisecond; within one, the smallest
// value is first and the largest last.
func VisitsSQL(d Dialect, where Frag) Frag {
	ms := d.Millis()
	first := func(col, cond string) string { return d.Substr(d.MinIf(d.Concat(ms, col), cond), 14) }
	cols := []string{
		"site_id", "session_id", "min(visitor_id)", "min(ts)", "max(ts)",
		d.Int(d.CountIf(isPageview)), d.Int(d.CountIf(isEvent)),
		first("pathname", isPageview), d.Substr(d.MaxIf(d.Concat(ms, "pathname"), isPageview), 14),
	}
	for _, dim := range visitAttrs {
		cols = append(cols, first(dim.Column(), isCounted))
	}
	cols = append(cols, d.Sum("engaged"))
	return Cat("SELECT ", strings.Join(cols, ", "), " FROM events WHERE ", where,
		" GROUP BY site_id, session_id HAVING ", d.CountIf(isCounted), " > 0")
}

// ValueDims are the row dimensions kept per visit in the visit_values table,
// so their breakdowns read one row per visit and value instead of grouping
// the range's events per visit and joining them to the visits.
var ValueDims = []store.Dimension{store.DimPage, store.DimEventName}

// VisitValueColumns are the columns VisitValuesSQL selects.
var VisitValueColumns = []string{"site_id", "session_id", "dim", "value", "pageviews", "events", "engaged", "depth"}

// VisitValuesSQL returns, for the events where holds, one row per (site,
// session) and value of each of ValueDims (VisitValueColumns): the page of
// its pageviews and custom events, the name of its custom events, with the
// pageviews and custom events it counts. A page's row also sums the visible
// time of the visit's pings and leaves from it and keeps the deepest scroll
// they reported (0 when none did); other rows have 0 for both. where appears
// twice in the text. The stores complete each row with its visit's visitor,
// start, bounce and duration.
func VisitValuesSQL(d Dialect, where Frag) Frag {
	return Cat("SELECT site_id, session_id, '", string(store.DimPage), "' AS dim, pathname AS value, ",
		d.Int(d.CountIf(isPageview)), " AS pageviews, ", d.Int(d.CountIf(isEvent)), " AS events, ",
		d.Sum("engaged"), " AS engaged, ", d.Int("max(scroll)"), " AS depth FROM events WHERE ", where,
		" GROUP BY site_id, session_id, pathname HAVING ", d.CountIf(isCounted), " > 0 UNION ALL ",
		"SELECT site_id, session_id, '", string(store.DimEventName), "' AS dim, name AS value, ",
		d.Int("0"), " AS pageviews, ", d.Count(), " AS events, ", d.Int("0"), " AS engaged, ", d.Int("0"),
		" AS depth FROM events WHERE ", where, " AND ", isEvent, " GROUP BY site_id, session_id, name")
}

// Duration is a visit's duration in seconds from its visits columns: its
// visible time when its tracker reported any, else the time from its first
// to its last row.
func Duration(d Dialect, start, end, engaged string) string {
	return d.Case([]string{engaged + " > 0"}, []string{d.Int(d.IntDiv(engaged, "1000"))}, d.Secs(end)+" - "+d.Secs(start))
}

// gen builds the queries of one store.Query.
type gen struct {
	d Dialect
	q store.Query
	// attrs are the session attributes the query needs, by dimension; their
	// column in the sessions subquery is a0, a1, ….
	attrs []store.Dimension
	// flags: the indexes of the row-level filters.
	flags []int
	// w: the aggregates read weighted rows (see weighted).
	w bool
}

func newGen(d Dialect, q store.Query, extra ...store.Dimension) *gen {
	g := &gen{d: d, q: q}
	for i, f := range q.Filters {
		if l := f.Dimension.Level(); l == store.LevelPage || l == store.LevelEvent {
			g.flags = append(g.flags, i)
		}
	}
	for _, dim := range extra {
		if dim.Level() == store.LevelSession {
			g.attr(dim)
		}
	}
	return g
}

// attr returns the sessions subquery column of a session dimension.
func (g *gen) attr(dim store.Dimension) string {
	for i, a := range g.attrs {
		if a == dim {
			return "a" + strconv.Itoa(i)
		}
	}
	g.attrs = append(g.attrs, dim)
	return "a" + strconv.Itoa(len(g.attrs)-1)
}

// visitsBase restricts visits to the site and those started in the range.
func (g *gen) visitsBase() Frag {
	return Cat("site_id = ", Arg(g.q.SiteID), " AND start_ts >= ", g.d.Time(g.q.From), " AND start_ts < ", g.d.Time(g.q.To))
}

// rowsBase restricts events to the site and the rows of the visits that
// started in the range: from the range's start to the last visit's end.
func (g *gen) rowsBase() Frag {
	return Cat("site_id = ", Arg(g.q.SiteID), " AND ts >= ", g.d.Time(g.q.From),
		" AND ts <= (SELECT max(end_ts) FROM visits WHERE ", g.visitsBase(), ")")
}

// match is the positive condition of a filter on a value expression.
func (g *gen) match(f store.Filter, value Frag) Frag {
	if f.Op == store.OpContains {
		alts := make([]Frag, len(f.Values))
		for i, v := range f.Values {
			alts[i] = g.d.Contains(value, Arg(v))
		}
		return Cat("(", Join(alts, " OR "), ")")
	}
	vals := make([]Frag, len(f.Values))
	for i, v := range f.Values {
		vals[i] = Arg(v)
	}
	return Cat(value, " IN (", Join(vals, ", "), ")")
}

// rowMatch is the positive condition of a row-level filter on one row,
// including the row types it applies to.
func (g *gen) rowMatch(f store.Filter) Frag {
	switch f.Dimension.Base() {
	case store.DimEventProp:
		return Cat(isEvent, " AND ", g.d.PropMatch(f.Dimension.PropKey(), func(v Frag) Frag { return g.match(f, v) }))
	case store.DimEventName:
		return Cat(isEvent, " AND ", g.match(f, col(f.Dimension)))
	default:
		return Cat(isCounted, " AND ", g.match(f, col(f.Dimension)))
	}
}

// rowPass is the condition under which a row-level filter lets a row of the
// given kind be counted: rows it does not apply to pass.
func (g *gen) rowPass(f store.Filter, kind string) Frag {
	if kind == isPageview && f.Dimension.Level() == store.LevelEvent {
		return Frag{SQL: "1 = 1"}
	}
	var m Frag
	switch f.Dimension.Base() {
	case store.DimEventProp:
		m = g.d.PropMatch(f.Dimension.PropKey(), func(v Frag) Frag { return g.match(f, v) })
	default:
		m = g.match(f, col(f.Dimension))
	}
	if f.Op.Negated() {
		return Cat("NOT (", m, ")")
	}
	return Cat("(", m, ")")
}

// counted is the condition for a row of kind (isPageview or isEvent) to be
// counted.
func (g *gen) counted(kind string) Frag {
	parts := []Frag{{SQL: kind}}
	for _, i := range g.flags {
		if p := g.rowPass(g.q.Filters[i], kind); p.SQL != "1 = 1" {
			parts = append(parts, p)
		}
	}
	return Join(parts, " AND ")
}

// countedRows is the condition for a row to be a counted row.
func (g *gen) countedRows() Frag {
	pv, ev := g.counted(isPageview), g.counted(isEvent)
	return Cat("((", pv, ") OR (", ev, "))")
}

// sessions is the sessions subquery: the visits that started in the range
// and pass the filters. Columns: session_id, vid, start_s, dur, pv_all,
// ev_all, pv, ev (the counted pageviews and custom events), bounce, a0….
func (g *gen) sessions() Frag { return g.visitRows(false) }

// weighted reads the visits as stored where the dialect weights their rows
// (see Dialect.Weight), far cheaper than collapsing them first: the sums
// are exact, the distinct visitors of a group may include the visitor of a
// replaced row until the rows merge. The aggregates over it go through
// wsum, wcount and having.
func (g *gen) weighted() Frag {
	g.w = g.d.Weight() != ""
	return g.visitRows(g.w)
}

// wsum, wcount and having are the sums, the row count and the HAVING
// clause of a grouping of the weighted rows (column w).
func (g *gen) wsum(expr string) string {
	if g.w {
		return g.d.Sum("w * " + expr)
	}
	return g.d.Sum(expr)
}

func (g *gen) wcount() string {
	if g.w {
		return g.d.Sum("w")
	}
	return g.d.Count()
}

func (g *gen) having() string {
	if g.w {
		return " HAVING sum(w) > 0"
	}
	return ""
}

// visitRows is the sessions subquery, with the visits as stored and their
// weight as column w when raw is set.
func (g *gen) visitRows(raw bool) Frag {
	d := g.d
	table, weight := d.Visits(), ""
	if raw {
		table, weight = "visits", ", "+d.Weight()+" AS w"
	}
	conds := []Frag{g.visitsBase()}
	for _, f := range g.q.Filters {
		var c Frag
		switch f.Dimension.Level() {
		case store.LevelSession:
			c = g.match(f, Frag{SQL: f.Dimension.VisitColumn()})
		case store.LevelVisit:
			c = g.goalFilter(f)
		default:
			c = Cat("session_id IN (SELECT session_id FROM events WHERE ", g.rowsBase(), " AND ", g.rowMatch(f), ")")
		}
		if f.Op.Negated() {
			c = Cat("NOT (", c, ")")
		}
		conds = append(conds, c)
	}
	var attrs strings.Builder
	for i, dim := range g.attrs {
		attrs.WriteString(", " + dim.VisitColumn() + " AS a" + strconv.Itoa(i))
	}
	live := Cat("SELECT session_id, visitor_id AS vid, ", d.Secs("start_ts"), " AS start_s, ",
		Duration(d, "start_ts", "end_ts", "engaged"), " AS dur, ",
		"pageviews AS pv_all, events AS ev_all", attrs.String(), weight, " FROM ", table, " WHERE ", Join(conds, " AND "))
	cols := "session_id, vid, start_s, dur, pv_all, ev_all, "
	bounce := ", (CASE WHEN pv_all = 1 AND ev_all = 0 THEN 1 ELSE 0 END) AS bounce" + attrCols(len(g.attrs))
	if raw {
		bounce += ", w"
	}
	if len(g.flags) == 0 {
		return Cat("SELECT ", cols, "pv_all AS pv, ev_all AS ev", bounce, " FROM (", live, ") AS l")
	}
	// Row-level filters also restrict what is counted to the rows they let
	// pass.
	pv, ev := g.counted(isPageview), g.counted(isEvent)
	counts := Cat("SELECT session_id, ", wrap(d.CountIf, pv), " AS pv, ", wrap(d.CountIf, ev), " AS ev FROM events WHERE ",
		g.rowsBase(), " AND ", g.countedRows(), " GROUP BY session_id")
	return Cat("SELECT ", cols, d.Coalesce("pv"), " AS pv, ", d.Coalesce("ev"), " AS ev", bounce,
		" FROM ", d.LeftJoinUsing(live, counts))
}

// wrap applies a text-only aggregate to a condition with arguments; the
// dialect uses the condition exactly once, so the arguments keep their order.
func wrap(agg func(string) string, cond Frag) Frag {
	return Frag{SQL: agg(cond.SQL), Args: cond.Args}
}

func attrCols(n int) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(", a" + strconv.Itoa(i))
	}
	return sb.String()
}

// overviewSQL returns the query of the overview sums: visitors, visits,
// pageviews, events, bounces, duration.
func overviewSQL(d Dialect, q store.Query) Frag {
	g := newGen(d, q)
	rows := g.weighted()
	return Cat("SELECT ", d.Uniq("vid"), ", ", g.wcount(), ", ", g.wsum("pv"), ", ", g.wsum("ev"), ", ",
		g.wsum("bounce"), ", ", g.wsum("dur"), " FROM (", rows, ") AS v")
}

// BucketKey is the expression of a row's bucket key (see store.Buckets), for
// the row's time in unix seconds secs.
func BucketKey(d Dialect, b *store.Buckets, secs string) string {
	if b.Interval == store.IntervalMonth {
		if len(b.MonthBounds) == 0 {
			return "0"
		}
		conds := make([]string, len(b.MonthBounds))
		vals := make([]string, len(b.MonthBounds))
		for i, bound := range b.MonthBounds {
			conds[i], vals[i] = secs+" < "+num(bound), num(int64(i))
		}
		return d.Case(conds, vals, num(int64(len(b.MonthBounds))))
	}
	off := num(b.Segments[len(b.Segments)-1].Offset)
	if n := len(b.Segments); n > 1 {
		conds := make([]string, n-1)
		vals := make([]string, n-1)
		for i, s := range b.Segments[:n-1] {
			conds[i], vals[i] = secs+" < "+num(s.Until), num(s.Offset)
		}
		off = d.Case(conds, vals, off)
	}
	local := "(" + secs + " + " + off + ")"
	if b.Interval == store.IntervalDay {
		return d.IntDiv(local, "86400")
	}
	unit := num(b.Unit())
	return "(" + d.IntDiv(local, unit) + " * " + unit + " - " + off + ")"
}

// timeseriesSQL returns the query of the visits' sums by the bucket of
// their start: key, visitors, visits, pageviews, events, bounces, duration.
func timeseriesSQL(d Dialect, q store.Query, b *store.Buckets) Frag {
	g := newGen(d, q)
	rows := g.weighted()
	return Cat("SELECT ", d.Int(BucketKey(d, b, "start_s")), " AS k, ", d.Uniq("vid"), ", ", g.wcount(), ", ",
		g.wsum("pv"), ", ", g.wsum("ev"), ", ", g.wsum("bounce"), ", ", g.wsum("dur"),
		" FROM (", rows, ") AS v GROUP BY k", g.having())
}

// breakdownSQL returns the query of one page of a breakdown, its columns value,
// visitors, visits, pageviews, events, bounces, duration, and the query of
// the number of distinct values (a single distinct count, which costs far
// less than the page: a top-10 of a dimension with more values runs both).
// With engaged set, the page also has the engagement sums of each row
// (eng, dep, rep: engaged, depth and reported of engagementSQL), read in
// the same pass.
func breakdownSQL(d Dialect, q store.Query, dim store.Dimension, limit, offset int) (page, count Frag, engaged bool) {
	g := newGen(d, q, dim)
	var grouped Frag
	cols := "value, visitors, visits, pageviews, events, bounces, duration"
	if dim.Level() == store.LevelSession {
		col := g.attr(dim)
		rows := g.weighted()
		grouped = Cat("SELECT ", col, " AS value, ", groupUniq(d, "vid"), " AS visitors, ", g.wcount(), " AS visits, ",
			g.wsum("pv"), " AS pageviews, ", g.wsum("ev"), " AS events, ", g.wsum("bounce"), " AS bounces, ",
			g.wsum("dur"), " AS duration FROM (", rows, ") AS v GROUP BY ", col, g.having())
		if g.w {
			count = Cat("SELECT ", d.Count(), " FROM (SELECT ", col, " FROM (", rows, ") AS v GROUP BY ", col, g.having(), ") AS c")
		} else {
			count = Cat("SELECT ", d.Uniq(col), " FROM (", rows, ") AS v")
		}
	} else if len(g.flags) == 0 && slices.Contains(ValueDims, dim) {
		grouped, count = g.valuesBreakdown(dim)
		if engaged = dim == store.DimPage; engaged {
			cols += ", eng, dep, rep"
		}
	} else {
		var value Frag
		where := Cat(g.rowsBase(), " AND ", g.countedRows())
		switch dim.Base() {
		case store.DimEventProp:
			value = d.PropValue(dim.PropKey())
			where = Cat(where, " AND ", isEvent, " AND ", d.PropHas(dim.PropKey()))
		case store.DimEventName:
			value = Frag{SQL: dim.Column()}
			where = Cat(where, " AND ", isEvent)
		default:
			value = Frag{SQL: dim.Column()}
		}
		// Group by the value's key where the dialect has a cheaper one,
		// carrying the value along.
		keyed, pick, groupBy := Cat(value, " AS value"), "value", "value"
		if key, ok := d.ValueKey(value); ok {
			keyed, pick, groupBy = Cat(key, " AS k, any(", value, ") AS value"), "any(value) AS value", "k"
		}
		// The values are those of the counted rows of the selected visits:
		// counting them needs neither the per-visit sums nor the join.
		count = Cat("SELECT ", wrap(d.Uniq, value), " FROM events WHERE ", where,
			" AND session_id IN (SELECT session_id FROM (", g.sessions(), ") AS v)")
		perSession := Cat("SELECT session_id, ", keyed, ", ", d.CountIf(isPageview), " AS n_pv, ",
			d.CountIf(isEvent), " AS n_ev FROM events WHERE ", where, " GROUP BY session_id, ", groupBy)
		sessions := Cat("SELECT session_id, vid, bounce, dur FROM (", g.sessions(), ") AS v")
		grouped = Cat("SELECT ", pick, ", ", groupUniq(d, "vid"), " AS visitors, ", d.Count(), " AS visits, ",
			d.Sum("n_pv"), " AS pageviews, ", d.Sum("n_ev"), " AS events, ", d.Sum("bounce"), " AS bounces, ",
			d.Sum("dur"), " AS duration FROM ", d.JoinUsing(perSession, sessions), " GROUP BY ", groupBy)
	}
	page = Cat("SELECT ", cols, " FROM (", grouped,
		") AS g ORDER BY visitors DESC, value ASC LIMIT ", num(int64(limit)), " OFFSET ", num(int64(offset)))
	return page, count, engaged
}

// valuesBreakdown is the breakdown of one of ValueDims when the query has
// only session filters: it reads visit_values, one row per visit and value
// (weighted as the visits, see weighted), restricted by the session filters
// through the visits. A page's rows also sum its engagement (see
// breakdownSQL).
func (g *gen) valuesBreakdown(dim store.Dimension) (grouped, count Frag) {
	d := g.d
	where := Cat("site_id = ", Arg(g.q.SiteID), " AND dim = ", Arg(string(dim)),
		" AND start_ts >= ", d.Time(g.q.From), " AND start_ts < ", d.Time(g.q.To))
	if len(g.q.Filters) > 0 {
		where = Cat(where, " AND session_id IN (SELECT session_id FROM (", g.sessions(), ") AS v)")
	}
	keyed, pick, groupBy := Frag{SQL: "value"}, "value", "value"
	if key, ok := d.ValueKey(Frag{SQL: "value"}); ok {
		keyed, pick, groupBy = Cat(key, " AS k, value"), "any(value) AS value", "k"
	}
	weight := ""
	if g.w = d.Weight() != ""; g.w {
		weight = ", " + d.Weight() + " AS w"
	}
	engaged, sums := "", ""
	if dim == store.DimPage {
		engaged = ", engaged, depth"
		sums = ", " + g.wsum("engaged") + " AS eng, " + g.wsum("depth") + " AS dep, " +
			g.wsum("(CASE WHEN depth > 0 THEN 1 ELSE 0 END)") + " AS rep"
	}
	rows := Cat("SELECT ", keyed, ", visitor_id, pageviews, events, bounce, duration", engaged, weight,
		" FROM visit_values WHERE ", where)
	grouped = Cat("SELECT ", pick, ", ", groupUniq(d, "visitor_id"), " AS visitors, ", g.wcount(), " AS visits, ",
		g.wsum("pageviews"), " AS pageviews, ", g.wsum("events"), " AS events, ", g.wsum("bounce"), " AS bounces, ",
		g.wsum("duration"), " AS duration", sums, " FROM (", rows, ") AS r GROUP BY ", groupBy, g.having())
	if g.w {
		count = Cat("SELECT ", d.Count(), " FROM (SELECT ", groupBy, " FROM (", rows, ") AS r GROUP BY ", groupBy, g.having(), ") AS c")
	} else {
		count = Cat("SELECT ", d.Uniq("value"), " FROM visit_values WHERE ", where)
	}
	return grouped, count
}
