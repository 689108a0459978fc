package sqlquery

import (
	"context"
	"fmt"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Funnel implements store.Querier. The store returns the rows of the
// selected visits that reach any step, with the steps each one reaches, in
// order of visit and millisecond; the ordered pass over them runs here, once
// for both stores, so ties within a millisecond cannot be broken differently.
// (ClickHouse's windowFunnel orders ties as they happen to be stored.)
func (qr *Querier) Funnel(ctx context.Context, q store.Query, steps []store.Goal) ([]store.FunnelStep, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := store.ValidateSteps(steps); err != nil {
		return nil, err
	}
	d := qr.Dialect
	g := newGen(d, q)
	mask := make([]Frag, len(steps))
	for i, s := range steps {
		mask[i] = Cat("(CASE WHEN ", g.goalCond(s), " THEN ", num(1<<i), " ELSE 0 END)")
	}
	rows := Cat("SELECT session_id, ", d.Millis(), " AS ms, ", Join(mask, " + "), " AS msk FROM events WHERE ",
		g.rowsBase(), " AND ", g.anyGoal(steps))
	sessions := Cat("SELECT session_id, vid FROM (", g.sessions(), ") AS v")
	query := Cat("SELECT ", d.Int("session_id"), ", ", d.Int("vid"), ", ", d.Int("ms"), ", ", d.Int("msk"), " FROM ", d.JoinUsing(rows, sessions), " ORDER BY session_id, ms")

	reached := map[int64]int{} // visitor → the most steps one of their visits reached
	var (
		visit   funnelVisit
		current int64
		vid     int64
		started bool
	)
	flush := func() {
		if started {
			reached[vid] = max(reached[vid], visit.done())
		}
	}
	err := qr.each(ctx, query, func(r Rows) error {
		var sid, v, ms, m int64
		if err := r.Scan(&sid, &v, &ms, &m); err != nil {
			return err
		}
		if !started || sid != current {
			flush()
			started, current, vid = true, sid, v
			visit = funnelVisit{steps: len(steps)}
		}
		visit.add(ms, uint8(m))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("funnel: %w", err)
	}
	flush()
	counts := make([]int64, len(steps))
	for _, n := range reached {
		for i := range n {
			counts[i]++
		}
	}
	return store.FunnelSteps(steps, counts), nil
}

// funnelVisit follows one visit through a funnel's steps. Rows arrive in
// order of their millisecond; the rows of one millisecond may reach the
// steps in any order, each row at most one step.
type funnelVisit struct {
	steps int
	next  int     // the first step not reached yet
	ms    int64   // the millisecond of the rows in group
	group []uint8 // the step masks of the rows of that millisecond
}

func (v *funnelVisit) add(ms int64, mask uint8) {
	if len(v.group) > 0 && ms != v.ms {
		v.settle()
	}
	v.ms = ms
	v.group = append(v.group, mask)
}

// done settles the last millisecond and returns how many steps the visit
// reached.
func (v *funnelVisit) done() int {
	v.settle()
	return v.next
}

// settle advances through as many steps as distinct rows of the current
// millisecond can reach: each further step is added while a matching of steps to
// rows can be augmented to include it.
func (v *funnelVisit) settle() {
	stepOf := make([]int, len(v.group))
	for i := range stepOf {
		stepOf[i] = -1
	}
	var augment func(step int, seen []bool) bool
	augment = func(step int, seen []bool) bool {
		for row, m := range v.group {
			if m&(1<<step) == 0 || seen[row] {
				continue
			}
			seen[row] = true
			if stepOf[row] < 0 || augment(stepOf[row], seen) {
				stepOf[row] = step
				return true
			}
		}
		return false
	}
	for v.next < v.steps && augment(v.next, make([]bool, len(v.group))) {
		v.next++
	}
	v.group = v.group[:0]
}
