package sqlitestore

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
)

// Overview implements store.Querier.
func (s *Store) Overview(ctx context.Context, q store.Query) (store.Overview, error) {
	if s.fromRollups(q) {
		return s.rollupOverview(ctx, q)
	}
	return newQuerier(s.db).Overview(ctx, q)
}

// Timeseries implements store.Querier.
func (s *Store) Timeseries(ctx context.Context, q store.Query, interval store.Interval) ([]store.Point, error) {
	if s.fromRollups(q) {
		if b, err := store.NewBuckets(q, interval); err == nil && b.WholeHours() {
			return s.rollupTimeseries(ctx, q, b)
		}
	}
	return newQuerier(s.db).Timeseries(ctx, q, interval)
}

// Breakdown implements store.Querier.
func (s *Store) Breakdown(ctx context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	if slices.Contains(rollupDims, dim) && s.fromRollups(q) && store.ValidatePage(limit, offset) == nil {
		return s.rollupBreakdown(ctx, q, dim, limit, offset)
	}
	return newQuerier(s.db).Breakdown(ctx, q, dim, limit, offset)
}

// Funnel implements store.Querier.
func (s *Store) Funnel(ctx context.Context, q store.Query, steps []store.Goal) ([]store.FunnelStep, error) {
	return newQuerier(s.db).Funnel(ctx, q, steps)
}

// newQuerier returns the analytics querier over db (see sqlquery).
func newQuerier(db *sql.DB) *sqlquery.Querier {
	return &sqlquery.Querier{
		Dialect: dialect{},
		Query: func(ctx context.Context, query string, args ...any) (sqlquery.Rows, error) {
			return db.QueryContext(ctx, query, args...)
		},
	}
}

// dialect writes SQLite's side of the analytics queries. Column ts holds unix
// milliseconds; SQLite has no timezone database, which is why the time
// buckets arrive as integer arithmetic (see store.Buckets).
type dialect struct{}

func (dialect) Time(t time.Time) sqlquery.Frag { return sqlquery.Arg(t.UnixMilli()) }

func (dialect) Secs(ts string) string { return "(" + ts + " / 1000)" }

func (dialect) Millis() string { return "ts" }

func (dialect) IntDiv(a, b string) string { return "(" + a + " / " + b + ")" }

func (dialect) CountIf(cond string) string { return "sum(CASE WHEN " + cond + " THEN 1 ELSE 0 END)" }

func (dialect) AnyIf(cond string) string { return "max(CASE WHEN " + cond + " THEN 1 ELSE 0 END)" }

func (dialect) Count() string { return "count(*)" }

// Uniq counts exactly, in Go (see uniq.go).
func (dialect) Uniq(expr string) string { return "uniq_exact(" + expr + ")" }

func (dialect) Sum(expr string) string { return "coalesce(sum(" + expr + "), 0)" }

func (dialect) Int(expr string) string { return expr }

func (dialect) MinIf(expr, cond string) string {
	return "coalesce(min(CASE WHEN " + cond + " THEN " + expr + " END), '')"
}

func (dialect) MaxIf(expr, cond string) string {
	return "coalesce(max(CASE WHEN " + cond + " THEN " + expr + " END), '')"
}

func (dialect) Concat(ms, s string) string { return "(" + ms + " || " + s + ")" }

func (dialect) Substr(s string, pos int) string {
	return "substr(" + s + ", " + strconv.Itoa(pos) + ")"
}

func (dialect) Case(conds, vals []string, last string) string {
	var sb strings.Builder
	sb.WriteString("(CASE")
	for i := range conds {
		sb.WriteString(" WHEN " + conds[i] + " THEN " + vals[i])
	}
	sb.WriteString(" ELSE " + last + " END)")
	return sb.String()
}

// Contains uses instr, which is case-sensitive like ClickHouse's position
// (LIKE would fold ASCII case).
func (dialect) Contains(hay, needle sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("instr(", hay, ", ", needle, ") > 0")
}

// Props are a JSON object of strings; json_each takes the key as a bound
// value, where a JSON path would need the key quoted into the SQL.
func (dialect) PropMatch(key string, match func(value sqlquery.Frag) sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("EXISTS (SELECT 1 FROM json_each(events.props) AS j WHERE j.key = ",
		sqlquery.Arg(key), " AND ", match(sqlquery.Frag{SQL: "j.value"}), ")")
}

func (dialect) PropValue(key string) sqlquery.Frag {
	return sqlquery.Cat("(SELECT j.value FROM json_each(events.props) AS j WHERE j.key = ", sqlquery.Arg(key), ")")
}

func (dialect) PropHas(key string) sqlquery.Frag {
	return sqlquery.Cat("EXISTS (SELECT 1 FROM json_each(events.props) AS j WHERE j.key = ", sqlquery.Arg(key), ")")
}

func (dialect) JoinUsing(left, right sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("(", left, ") AS r JOIN (", right, ") AS s USING (session_id)")
}

func (dialect) LeftJoinUsing(left, right sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("(", left, ") AS l LEFT JOIN (", right, ") AS r USING (session_id)")
}

func (dialect) Coalesce(expr string) string { return "coalesce(" + expr + ", 0)" }

// Visits: the table holds one row per visit.
func (dialect) Visits() string { return "visits" }

// Weight: the tables hold one row per visit (and value).
func (dialect) Weight() string { return "" }

// ValueKey: SQLite groups by the value itself.
func (dialect) ValueKey(sqlquery.Frag) (sqlquery.Frag, bool) { return sqlquery.Frag{}, false }

// Wildcard uses GLOB, case-sensitive like the other comparisons; the
// pattern's other GLOB characters are bracketed so they match themselves.
func (dialect) Wildcard(value sqlquery.Frag, pattern string) sqlquery.Frag {
	glob := strings.NewReplacer("[", "[[]", "]", "[]]", "?", "[?]").Replace(pattern)
	return sqlquery.Cat(value, " GLOB ", sqlquery.Arg(glob))
}
