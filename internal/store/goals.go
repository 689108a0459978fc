package store

import (
	"context"
	"slices"
	"strings"
)

// Goals and funnels: conversions defined on a site's events.
//
// A goal is reached by a custom event (Event, with every Props pair equal)
// or by a pageview whose pathname matches the pattern Page, where * matches
// any run of characters and nothing else is special. A visit converted on a
// goal when one of its counted rows reached it.
//
// The breakdown by DimGoal has a row per goal of Query.Goals with at least
// one conversion: Visitors and Visits count the converting visitors and
// visits, Events the conversions (the rows that reached the goal),
// ConversionRate is converting visitors per 100 visitors of the query
// without its goal filters, and Revenue the custom events' revenue per
// currency. A goal filter selects the visits that converted on one of the
// named goals (is, contains on the name) or on none of them (is_not); like
// a session filter it does not change what the selected visits count.

// DimGoal is the dimension of goals (see above).
const DimGoal Dimension = "goal"

// LevelVisit: a condition on a visit's rows taken together (goals).
const LevelVisit Level = LevelEvent + 1

// Limits on goals and funnels.
const (
	// MaxGoals bounds the goals of one query.
	MaxGoals = 100
	// MinSteps and MaxSteps bound a funnel's steps.
	MinSteps = 2
	MaxSteps = 8
	// MaxGoalProps bounds a goal's property matches.
	MaxGoalProps = 10
)

// Goal is a conversion a site defines (the goals collection), or a step of a
// funnel (without a name).
type Goal struct {
	Name string `json:"name,omitempty"`
	// Event is a custom event name; Props, when set, must all match.
	Event string            `json:"event,omitempty"`
	Props map[string]string `json:"props,omitempty"`
	// Page is a pathname pattern: * matches any run of characters.
	Page string `json:"page,omitempty"`
}

// Validate checks that g is either an event or a page goal within limits.
func (g Goal) Validate() error {
	switch {
	case (g.Event == "") == (g.Page == ""):
		return invalid("a goal needs either an event name or a page pattern")
	case g.Page != "" && len(g.Props) > 0:
		return invalid("a page goal has no properties")
	case len(g.Name) > MaxValueLength || len(g.Event) > MaxValueLength || len(g.Page) > MaxValueLength:
		return invalid("goal names, events and patterns are at most %d bytes", MaxValueLength)
	case len(g.Props) > MaxGoalProps:
		return invalid("a goal matches at most %d properties", MaxGoalProps)
	}
	for k, v := range g.Props {
		if k == "" || len(k) > MaxPropKey || len(v) > MaxValueLength {
			return invalid("goal property keys are 1 to %d bytes, values at most %d", MaxPropKey, MaxValueLength)
		}
	}
	return nil
}

// PropKeys returns the keys of g.Props in order, so queries bind them in a
// stable order.
func (g Goal) PropKeys() []string {
	keys := make([]string, 0, len(g.Props))
	for k := range g.Props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Reached reports whether a hit reaches g: a custom event named g.Event
// (event is "" for other hits) carrying every pair of g.Props, or a
// pageview whose path matches g.Page. The conformance checks
// (storetest) hold both stores' SQL to it; the live layer matches with it.
func (g Goal) Reached(pageview bool, path, event string, props map[string]string) bool {
	if g.Page != "" {
		return pageview && MatchPattern(g.Page, path)
	}
	if pageview || g.Event == "" || event != g.Event {
		return false
	}
	for k, v := range g.Props {
		if got, ok := props[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// MatchPattern reports whether s matches the page pattern p, where *
// matches any run of characters (the definition the stores' SQL follows).
func MatchPattern(p, s string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

// GoalsNamed returns the goals of q a goal filter selects: by name for is
// and is_not, by part of the name for contains. A name no goal has is an
// invalid query.
func (q Query) GoalsNamed(f Filter) ([]Goal, error) {
	var out []Goal
	for _, v := range f.Values {
		found := false
		for _, g := range q.Goals {
			if f.Op == OpContains && strings.Contains(g.Name, v) || f.Op != OpContains && g.Name == v {
				found = true
				if !slices.ContainsFunc(out, func(o Goal) bool { return o.Name == g.Name }) {
					out = append(out, g)
				}
			}
		}
		if !found {
			return nil, invalid("the site has no goal %q", v)
		}
	}
	return out, nil
}

// WithoutGoalFilters returns q without its goal filters: the base of a
// conversion rate.
func (q Query) WithoutGoalFilters() Query {
	q.Filters = slices.DeleteFunc(slices.Clone(q.Filters), func(f Filter) bool { return f.Dimension == DimGoal })
	return q
}

// validateGoals checks q.Goals: within limits, each valid, names unique.
func (q *Query) validateGoals() error {
	if len(q.Goals) > MaxGoals {
		return invalid("at most %d goals", MaxGoals)
	}
	names := map[string]bool{}
	for _, g := range q.Goals {
		if err := g.Validate(); err != nil {
			return err
		}
		if g.Name == "" || names[g.Name] {
			return invalid("goal names must be set and unique, %q is not", g.Name)
		}
		names[g.Name] = true
	}
	// Nil goals are not loaded yet (request parsing): names are checked
	// once they are, and until then name no goal.
	for _, f := range q.Filters {
		if f.Dimension == DimGoal && q.Goals != nil {
			if _, err := q.GoalsNamed(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// ValidateSteps checks a funnel's steps.
func ValidateSteps(steps []Goal) error {
	if len(steps) < MinSteps || len(steps) > MaxSteps {
		return invalid("a funnel has %d to %d steps", MinSteps, MaxSteps)
	}
	for i, s := range steps {
		if err := s.Validate(); err != nil {
			return invalid("step %d: %s", i+1, strings.TrimPrefix(err.Error(), ErrInvalidQuery.Error()+": "))
		}
	}
	return nil
}

// Revenue is the revenue of a goal's conversions in one currency, as
// decimal strings (exact: amounts are kept in millionths).
type Revenue struct {
	Currency string `json:"currency"`
	Total    string `json:"total"`
	Average  string `json:"average"`
}

// FunnelStep is one step of a funnel's answer.
type FunnelStep struct {
	Goal
	// Visitors reached this step after the previous ones, in order, within
	// one visit.
	Visitors int64 `json:"visitors"`
	// DropOff is the previous step's visitors who did not reach this one.
	DropOff int64 `json:"dropOff"`
	// ConversionRate is Visitors per 100 visitors of the first step.
	ConversionRate float64 `json:"conversionRate"`
}

// Funneler answers funnels.
type Funneler interface {
	// Funnel returns, per step, the visitors whose visit reached it after the
	// previous steps. A visit reaches the steps in the order of its rows'
	// milliseconds (the precision both stores share); within one
	// millisecond its rows may reach several steps in any order, each row
	// one step.
	// The filters select visits; steps look at all of their counted rows.
	Funnel(ctx context.Context, q Query, steps []Goal) ([]FunnelStep, error)
}

// FunnelSteps derives the answer from the visitors who reached each step.
func FunnelSteps(steps []Goal, reached []int64) []FunnelStep {
	out := make([]FunnelStep, len(steps))
	for i, s := range steps {
		out[i] = FunnelStep{Goal: s, Visitors: reached[i]}
		if i > 0 {
			out[i].DropOff = reached[i-1] - reached[i]
		}
		if reached[0] > 0 {
			out[i].ConversionRate = round(float64(reached[i])*100/float64(reached[0]), 10)
		}
	}
	return out
}

// ConversionRate is converting visitors per 100 of all, rounded to 1
// decimal.
func ConversionRate(converted, all int64) float64 {
	if all == 0 {
		return 0
	}
	return round(float64(converted)*100/float64(all), 10)
}
