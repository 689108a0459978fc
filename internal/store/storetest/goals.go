package storetest

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Goals are the goals the checks define on every site: event goals with and
// without properties, page goals with and without wildcards, and patterns
// whose characters are special to GLOB, LIKE or regular expressions (they
// must match only themselves).
func Goals() []store.Goal {
	return []store.Goal{
		{Name: "Signup", Event: "signup"},
		{Name: "Pro signup", Event: "signup", Props: map[string]string{"plan": "pro"}},
		{Name: "Pro trial", Event: "signup", Props: map[string]string{"plan": "pro", "trial": "yes"}},
		{Name: "Download", Event: "download"},
		{Name: "Pricing", Page: "/pricing"},
		{Name: "Blog", Page: "/blog/*"},
		{Name: "Docs", Page: "/docs*"},
		{Name: "Über", Page: "/ü*"},
		{Name: "Pipe", Page: "*a|b"},
		{Name: "Nothing", Event: "never"},
		{Name: "GLOB class", Page: "/blog/[a]*"},
		{Name: "GLOB one", Page: "/blog/?ello*"},
		{Name: "Regexp dot", Page: "/blog/hello.world"},
		{Name: "LIKE percent", Page: "/%"},
	}
}

// Funnels are the funnels the checks ask for.
func Funnels() [][]store.Goal {
	return [][]store.Goal{
		{{Page: "/"}, {Page: "/pricing"}, {Event: "signup"}},
		{{Page: "/*"}, {Page: "/*"}, {Page: "/*"}, {Page: "/*"}},
		{{Page: "/blog/*"}, {Event: "signup", Props: map[string]string{"plan": "pro"}}},
		{{Page: "/pricing"}, {Page: "/"}},
		{{Event: "download"}, {Event: "never"}},
		{{Page: "/docs*"}, {Page: "/docs*"}, {Page: "/about"}, {Page: "/"}, {Page: "/pricing"}, {Page: "/signup"}, {Page: "/*"}, {Event: "signup"}},
	}
}

// goalFilterSets are filter sets with goals.
func goalFilterSets() []FilterSet {
	return []FilterSet{
		{"goal is Signup", []store.Filter{flt(store.DimGoal, store.OpIs, "Signup")}},
		{"goal is_not Pricing", []store.Filter{flt(store.DimGoal, store.OpIsNot, "Pricing")}},
		{"goal contains signup", []store.Filter{flt(store.DimGoal, store.OpContains, "signup")}},
		{"goal is Blog|Docs and country DE", []store.Filter{flt(store.DimGoal, store.OpIs, "Blog", "Docs"), flt(store.DimCountry, store.OpIs, "DE")}},
		{"goal is Download and page /pricing", []store.Filter{flt(store.DimGoal, store.OpIs, "Download"), flt(store.DimPage, store.OpIs, "/pricing")}},
	}
}

// withRevenue gives some of the generated pro signups revenue in one of
// two currencies, derived from the event's id (so the generator's random
// sequence is unchanged).
func withRevenue(ev *event.Event) {
	if ev.Type != event.Custom || ev.Name != "signup" || ev.Props["plan"] != "pro" {
		return
	}
	h := ev.ID[len(ev.ID)-1]
	switch {
	case h < '4':
		ev.RevenueAmount, ev.RevenueCurrency = 49_990_000, "EUR"
	case h < '8':
		ev.RevenueAmount, ev.RevenueCurrency = int64(h)*1_000_001, "USD"
	}
}

// reaches reports whether a row reaches goal, by the rule the live layer
// uses too: the checks hold both stores' SQL to it.
func reaches(goal store.Goal, e *event.Event) bool {
	name := ""
	if e.Type == event.Custom {
		name = e.Name
	}
	return goal.Reached(e.Type == event.Pageview, e.Pathname, name, e.Props)
}

// converted reports whether a goal filter's goals are reached in s.
func converted(q store.Query, f store.Filter, s *refSession) bool {
	goals, err := q.GoalsNamed(f)
	if err != nil {
		panic(err)
	}
	for _, e := range s.rows {
		for _, g := range goals {
			if reaches(g, e) {
				return true
			}
		}
	}
	return false
}

// goalBreakdown answers like Breakdown by store.DimGoal.
func (r *Reference) goalBreakdown(q store.Query, limit, offset int) store.Breakdown {
	sessions, _ := r.eval(q)
	all := r.Totals(q.WithoutGoalFilters()).Visitors
	out := store.Breakdown{Rows: []store.Row{}}
	for _, g := range q.Goals {
		row := store.Row{Value: g.Name}
		visitors := map[uint64]bool{}
		revenue := map[string][2]int64{}
		for _, s := range sessions {
			n := int64(0)
			for _, e := range s.rows {
				if reaches(g, e) {
					n++
					if e.RevenueCurrency != "" {
						acc := revenue[e.RevenueCurrency]
						revenue[e.RevenueCurrency] = [2]int64{acc[0] + e.RevenueAmount, acc[1] + 1}
					}
				}
			}
			if n > 0 {
				visitors[s.visitor] = true
				row.Visits++
				row.Events += n
			}
		}
		if row.Events == 0 {
			continue
		}
		row.Visitors = int64(len(visitors))
		row.ConversionRate = store.ConversionRate(row.Visitors, all)
		for _, c := range slices.Sorted(maps.Keys(revenue)) {
			total, n := revenue[c][0], revenue[c][1]
			avg := total / n
			if 2*(total%n) >= n {
				avg++
			}
			row.Revenue = append(row.Revenue, store.Revenue{Currency: c, Total: event.FormatAmount(total), Average: event.FormatAmount(avg)})
		}
		out.Rows = append(out.Rows, row)
	}
	slices.SortFunc(out.Rows, func(a, b store.Row) int {
		if a.Visitors != b.Visitors {
			return int(b.Visitors - a.Visitors)
		}
		return strings.Compare(a.Value, b.Value)
	})
	out.Total = len(out.Rows)
	out.Rows = out.Rows[min(offset, len(out.Rows)):min(offset+limit, len(out.Rows))]
	return out
}

// Funnel answers like store.Querier.Funnel, by trying every way the rows
// of each millisecond can reach the next steps.
func (r *Reference) Funnel(q store.Query, steps []store.Goal) []store.FunnelStep {
	sessions, _ := r.eval(q)
	best := map[uint64]int{}
	for _, s := range sessions {
		byMs := map[int64][]*event.Event{}
		for _, e := range s.rows {
			byMs[e.Time.UnixMilli()] = append(byMs[e.Time.UnixMilli()], e)
		}
		next := 0
		for _, ms := range slices.Sorted(maps.Keys(byMs)) {
			next = furthest(steps, byMs[ms], next, make([]bool, len(byMs[ms])))
		}
		best[s.visitor] = max(best[s.visitor], next)
	}
	reached := make([]int64, len(steps))
	for _, n := range best {
		for i := range n {
			reached[i]++
		}
	}
	return store.FunnelSteps(steps, reached)
}

// furthest is the furthest step rows can take a visit from step next, each
// unused row reaching at most one step.
func furthest(steps []store.Goal, rows []*event.Event, next int, used []bool) int {
	if next == len(steps) {
		return next
	}
	out := next
	for i, e := range rows {
		if !used[i] && reaches(steps[next], e) {
			used[i] = true
			out = max(out, furthest(steps, rows, next+1, used))
			used[i] = false
		}
	}
	return out
}

// CheckConversions compares the goal breakdown, goal filters and funnels of
// q with the reference over a site's whole range.
func CheckConversions(t *testing.T, q store.Querier, ref *Reference, query store.Query) {
	t.Helper()
	ctx := context.Background()
	query.Goals = Goals()
	sets := append([]FilterSet{{"none", nil}}, goalFilterSets()...)
	sets = append(sets, FilterSetsNamed("page is /pricing", "DE and /pricing and signup")...)
	for _, fs := range sets {
		fq := query
		fq.Filters = fs.Filters
		t.Run("goals/"+fs.Name, func(t *testing.T) {
			got, err := q.Breakdown(ctx, fq, store.DimGoal, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := ref.Breakdown(fq, store.DimGoal, 100, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
		t.Run("overview/"+fs.Name, func(t *testing.T) {
			got, err := q.Overview(ctx, fq)
			if err != nil {
				t.Fatal(err)
			}
			if want := ref.Overview(fq); got != want {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
		t.Run("pages/"+fs.Name, func(t *testing.T) {
			got, err := q.Breakdown(ctx, fq, store.DimPage, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := ref.Breakdown(fq, store.DimPage, 10, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
		for i, steps := range Funnels() {
			t.Run(fmt.Sprintf("funnel/%d/%s", i, fs.Name), func(t *testing.T) {
				got, err := q.Funnel(ctx, fq, steps)
				if err != nil {
					t.Fatal(err)
				}
				if want := ref.Funnel(fq, steps); !reflect.DeepEqual(got, want) {
					t.Fatalf("\n got %+v\nwant %+v", got, want)
				}
			})
		}
	}
	t.Run("goals/paged", func(t *testing.T) {
		got, err := q.Breakdown(ctx, query, store.DimGoal, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.Breakdown(query, store.DimGoal, 2, 1); !reflect.DeepEqual(got, want) || len(got.Rows) != 2 {
			t.Fatalf("\n got %+v\nwant %+v (2 rows)", got, want)
		}
	})
}
