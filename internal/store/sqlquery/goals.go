package sqlquery

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// goalCond is the condition for a row to reach goal: the custom event with
// every property, or a pageview of a matching pathname.
func (g *gen) goalCond(goal store.Goal) Frag {
	if goal.Event != "" {
		parts := []Frag{{SQL: isEvent}, Cat("name = ", Arg(goal.Event))}
		for _, k := range goal.PropKeys() {
			v := goal.Props[k]
			parts = append(parts, g.d.PropMatch(k, func(value Frag) Frag { return Cat(value, " = ", Arg(v)) }))
		}
		return Cat("(", Join(parts, " AND "), ")")
	}
	path := Frag{SQL: "pathname"}
	if !strings.Contains(goal.Page, "*") {
		return Cat("(", isPageview, " AND ", path, " = ", Arg(goal.Page), ")")
	}
	return Cat("(", isPageview, " AND ", g.d.Wildcard(path, goal.Page), ")")
}

// anyGoal is the condition for a row to reach one of goals.
func (g *gen) anyGoal(goals []store.Goal) Frag {
	conds := make([]Frag, len(goals))
	for i, goal := range goals {
		conds[i] = g.goalCond(goal)
	}
	return Cat("(", Join(conds, " OR "), ")")
}

// goalFilter is the positive condition of a goal filter on a visit: it has
// a row that reached one of the named goals.
func (g *gen) goalFilter(f store.Filter) Frag {
	goals, _ := g.q.GoalsNamed(f) // validated with the query
	if len(goals) == 0 {
		return Frag{SQL: "1 = 0"}
	}
	return Cat("session_id IN (SELECT session_id FROM events WHERE ", g.rowsBase(), " AND ", g.anyGoal(goals), ")")
}

// goalBreakdown answers the breakdown by store.DimGoal: one query for the
// visitors of the range, one for the conversions of every goal at once, and
// one for the revenue of the event goals.
func (qr *Querier) goalBreakdown(ctx context.Context, q store.Query, limit, offset int) (store.Breakdown, error) {
	d := qr.Dialect
	var all int64
	err := qr.each(ctx, Cat("SELECT ", d.Uniq("vid"), " FROM (", newGen(d, q.WithoutGoalFilters()).sessions(), ") AS v"),
		func(r Rows) error { return r.Scan(&all) })
	if err != nil {
		return store.Breakdown{}, fmt.Errorf("goal breakdown: %w", err)
	}
	out := store.Breakdown{Rows: []store.Row{}}
	if len(q.Goals) == 0 {
		return out, nil
	}

	g := newGen(d, q)
	counts := make([]Frag, len(q.Goals))
	sums := make([]string, 0, 3*len(q.Goals))
	for i, goal := range q.Goals {
		c := "g" + strconv.Itoa(i)
		counts[i] = Cat(wrap(d.CountIf, g.goalCond(goal)), " AS ", c)
		// coalesce: ClickHouse's uniq of no non-NULL value is NULL.
		sums = append(sums, d.Int("coalesce("+d.Uniq(d.Case([]string{c + " > 0"}, []string{"vid"}, "NULL"))+", 0)"),
			d.Int(d.Coalesce(d.CountIf(c+" > 0"))), d.Sum(c))
	}
	perSession := Cat("SELECT session_id, ", Join(counts, ", "), " FROM events WHERE ", g.rowsBase(),
		" AND ", g.anyGoal(q.Goals), " GROUP BY session_id")
	sessions := Cat("SELECT session_id, vid FROM (", g.sessions(), ") AS v")
	rows := make([]store.Row, len(q.Goals))
	err = qr.each(ctx, Cat("SELECT ", strings.Join(sums, ", "), " FROM ", d.JoinUsing(perSession, sessions)),
		func(r Rows) error {
			dest := make([]any, 0, 3*len(rows))
			for i := range rows {
				dest = append(dest, &rows[i].Visitors, &rows[i].Visits, &rows[i].Events)
			}
			return r.Scan(dest...)
		})
	if err != nil {
		return store.Breakdown{}, fmt.Errorf("goal breakdown: %w", err)
	}
	if err := qr.goalRevenue(ctx, g, rows); err != nil {
		return store.Breakdown{}, fmt.Errorf("goal revenue: %w", err)
	}
	for i, goal := range q.Goals {
		if rows[i].Events > 0 {
			rows[i].Value = goal.Name
			rows[i].ConversionRate = store.ConversionRate(rows[i].Visitors, all)
			out.Rows = append(out.Rows, rows[i])
		}
	}
	SortRows(out.Rows)
	out.Total = len(out.Rows)
	out.Rows = out.Rows[min(offset, len(out.Rows)):min(offset+limit, len(out.Rows))]
	return out, nil
}

// goalRevenue fills the revenue of the event goals' conversions, per
// currency: the sum and the count of the conversions that carried revenue.
func (qr *Querier) goalRevenue(ctx context.Context, g *gen, rows []store.Row) error {
	d := qr.Dialect
	var cols []Frag
	var idx []int
	for i, goal := range g.q.Goals {
		if goal.Event == "" {
			continue
		}
		c := g.goalCond(goal)
		cols = append(cols, wrap(d.Sum, Cat("CASE WHEN ", c, " THEN revenue_amount ELSE 0 END")), wrap(func(c string) string { return d.Int(d.Coalesce(d.CountIf(c))) }, g.goalCond(goal)))
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return nil
	}
	events := make([]store.Goal, len(idx))
	for j, i := range idx {
		events[j] = g.q.Goals[i]
	}
	query := Cat("SELECT revenue_currency, ", Join(cols, ", "), " FROM events WHERE ", g.rowsBase(),
		" AND revenue_currency != '' AND ", g.anyGoal(events),
		" AND session_id IN (SELECT session_id FROM (", g.sessions(), ") AS v) GROUP BY revenue_currency ORDER BY revenue_currency")
	return qr.each(ctx, query, func(r Rows) error {
		var currency string
		vals := make([]int64, 2*len(idx))
		dest := []any{&currency}
		for j := range vals {
			dest = append(dest, &vals[j])
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		for j, i := range idx {
			if n := vals[2*j+1]; n > 0 {
				rows[i].Revenue = append(rows[i].Revenue, NewRevenue(currency, vals[2*j], n))
			}
		}
		return nil
	})
}

// NewRevenue describes n conversions in currency whose amounts add up to
// total (millionths).
func NewRevenue(currency string, total, n int64) store.Revenue {
	return store.Revenue{Currency: currency, Total: event.FormatAmount(total), Average: event.FormatAmount((2*total + n) / (2 * n))}
}

// SortRows orders breakdown rows by visitors (descending), then value.
func SortRows(rows []store.Row) {
	slices.SortFunc(rows, func(a, b store.Row) int {
		if a.Visitors != b.Visitors {
			if a.Visitors > b.Visitors {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
}
