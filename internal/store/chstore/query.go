package chstore

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
)

var _ store.Store = (*Store)(nil)

// Overview implements store.Querier.
func (s *Store) Overview(ctx context.Context, q store.Query) (store.Overview, error) {
	if s.fromRollups(q) {
		return s.rollupOverview(ctx, q)
	}
	return newQuerier(s.conn).Overview(ctx, q)
}

// Timeseries implements store.Querier.
func (s *Store) Timeseries(ctx context.Context, q store.Query, interval store.Interval) ([]store.Point, error) {
	if s.fromRollups(q) {
		if b, err := store.NewBuckets(q, interval); err == nil && b.WholeHours() {
			return s.rollupTimeseries(ctx, q, b)
		}
	}
	return newQuerier(s.conn).Timeseries(ctx, q, interval)
}

// Breakdown implements store.Querier.
func (s *Store) Breakdown(ctx context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	if rolledUp[dim] && s.fromRollups(q) && store.ValidatePage(limit, offset) == nil {
		return s.rollupBreakdown(ctx, q, dim, limit, offset)
	}
	return newQuerier(s.conn).Breakdown(ctx, q, dim, limit, offset)
}

// Funnel implements store.Querier.
func (s *Store) Funnel(ctx context.Context, q store.Query, steps []store.Goal) ([]store.FunnelStep, error) {
	return newQuerier(s.conn).Funnel(ctx, q, steps)
}

// maxQuerySize lets the longest accepted query through: filter values
// (store.MaxFilterBytes) appear up to five times in a query's text, each
// byte at most twice once escaped; the server's default is 256 KiB.
const maxQuerySize = 4 << 20

// codeTimeoutExceeded is the server's error when max_execution_time ran out.
const codeTimeoutExceeded = 159

// newQuerier returns the analytics querier over conn (see sqlquery). A
// query whose context has a deadline gets it as max_execution_time too, so
// the server stops working on it when the caller stops waiting.
func newQuerier(conn driver.Conn) *sqlquery.Querier {
	return &sqlquery.Querier{
		Dialect: dialect{},
		Query: func(ctx context.Context, query string, args ...any) (sqlquery.Rows, error) {
			settings := clickhouse.Settings{"max_query_size": maxQuerySize}
			if deadline, ok := ctx.Deadline(); ok {
				settings["max_execution_time"] = max(1, int(math.Ceil(time.Until(deadline).Seconds())))
			}
			return conn.Query(clickhouse.Context(ctx, clickhouse.WithSettings(settings)), query, args...)
		},
		TimedOut: func(err error) bool {
			var ex *clickhouse.Exception
			return errors.As(err, &ex) && ex.Code == codeTimeoutExceeded
		},
	}
}

// dialect writes ClickHouse's side of the analytics queries, in SQL that
// 18.16 accepts as well as current releases: no WITH subqueries, explicit
// join strictness, functions that exist since 1.1.
type dialect struct{}

func (dialect) Time(t time.Time) sqlquery.Frag {
	return sqlquery.Cat("toDateTime(", sqlquery.Arg(uint32(t.Unix())), ")")
}

func (dialect) Secs(ts string) string { return "toInt64(toUInt32(" + ts + "))" }

func (dialect) Millis() string { return "(toInt64(toUInt32(ts)) * 1000 + ts_ms)" }

func (dialect) IntDiv(a, b string) string { return "intDiv(" + a + ", " + b + ")" }

func (dialect) CountIf(cond string) string { return "countIf(" + cond + ")" }

func (dialect) AnyIf(cond string) string { return "max(" + cond + ")" }

func (dialect) Count() string { return "toInt64(count())" }

// Uniq is approximate (adaptive sampling; exact up to 65,536 values): 0.11%
// off at a million visitors, where uniqExact took 1.6 times as long.
func (dialect) Uniq(expr string) string { return "toInt64(uniq(" + expr + "))" }

// GroupUniq counts the visitors per value of a breakdown or per day: uniq's
// hash set of a group (up to 512 KiB) leaves the cache once several groups
// are large, where uniqCombined (exact for small sets, then a HyperLogLog of
// 2^17 cells, about 0.3% off) costs less per row; for one group or many
// small ones (the overview, hours) uniq is faster.
func (dialect) GroupUniq(expr string) string { return "toInt64(uniqCombined(" + expr + "))" }

func (dialect) Sum(expr string) string { return "toInt64(sum(" + expr + "))" }

func (dialect) Int(expr string) string { return "toInt64(" + expr + ")" }

// MinIf and MaxIf return the type's default, "", over no rows.
func (dialect) MinIf(expr, cond string) string { return "minIf(" + expr + ", " + cond + ")" }

func (dialect) MaxIf(expr, cond string) string { return "maxIf(" + expr + ", " + cond + ")" }

func (dialect) Concat(ms, s string) string { return "concat(toString(" + ms + "), " + s + ")" }

func (dialect) Substr(s string, pos int) string {
	return "substring(" + s + ", " + strconv.Itoa(pos) + ")"
}

func (dialect) Case(conds, vals []string, last string) string {
	var sb strings.Builder
	sb.WriteString("multiIf(")
	for i := range conds {
		sb.WriteString(conds[i] + ", " + vals[i] + ", ")
	}
	sb.WriteString(last + ")")
	return sb.String()
}

func (dialect) Contains(hay, needle sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("position(", hay, ", ", needle, ") > 0")
}

// Props are parallel arrays of keys and values.
func (d dialect) PropMatch(key string, match func(value sqlquery.Frag) sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("(", d.PropHas(key), " AND ", match(d.PropValue(key)), ")")
}

func (dialect) PropValue(key string) sqlquery.Frag {
	return sqlquery.Cat("prop_values[indexOf(prop_keys, ", sqlquery.Arg(key), ")]")
}

func (dialect) PropHas(key string) sqlquery.Frag {
	return sqlquery.Cat("has(prop_keys, ", sqlquery.Arg(key), ")")
}

func (dialect) JoinUsing(left, right sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("(", left, ") AS r ALL INNER JOIN (", right, ") AS s USING session_id")
}

func (dialect) LeftJoinUsing(left, right sqlquery.Frag) sqlquery.Frag {
	return sqlquery.Cat("(", left, ") AS l ANY LEFT JOIN (", right, ") AS r USING session_id")
}

// Coalesce: a LEFT JOIN fills missing columns with 0.
func (dialect) Coalesce(expr string) string { return expr }

// Visits: FINAL collapses each visit's cancelled rows as it reads them
// (grouping the rows by visit instead costs several times more). The views'
// sums read the rows as stored, weighted by sign, which skips that cost.
func (dialect) Visits() string { return "visits FINAL" }

// Weight: a visit's replaced row and its cancelling copy (sign -1) stay
// beside the new row until a merge collapses them.
func (dialect) Weight() string { return "sign" }

// ValueKey groups by a 64-bit hash of the value: integer keys group about
// twice as fast as strings (the page breakdown at 10M events). Two values of
// one range would have to collide in cityHash64 to be merged.
func (dialect) ValueKey(value sqlquery.Frag) (sqlquery.Frag, bool) {
	return sqlquery.Cat("cityHash64(", value, ")"), true
}

// Wildcard uses an anchored regular expression of the pattern's quoted
// parts (LIKE in 18.16 has no escape for its own wildcards).
func (dialect) Wildcard(value sqlquery.Frag, pattern string) sqlquery.Frag {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return sqlquery.Cat("match(", value, ", ", sqlquery.Arg("(?s)^"+strings.Join(parts, ".*")+"$"), ")")
}
