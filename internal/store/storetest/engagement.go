package storetest

import (
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// engagement returns the engagement sums of every page among the visits,
// from their pings and leaves on the pages they viewed or sent a custom
// event from (see store.Engagement).
func engagement(sessions map[uint64]*refSession) map[string]store.Engagement {
	type visitPage struct {
		session uint64
		page    string
	}
	type acc struct{ engaged, depth int64 }
	perVisit := map[visitPage]*acc{}
	viewed := map[visitPage]bool{}
	for id, s := range sessions {
		for _, e := range s.rows {
			if counted(e) {
				viewed[visitPage{id, e.Pathname}] = true
			}
			if e.Type != event.Ping && e.Type != event.Leave {
				continue
			}
			k := visitPage{id, e.Pathname}
			a := perVisit[k]
			if a == nil {
				a = &acc{}
				perVisit[k] = a
			}
			a.engaged += int64(e.Engaged)
			a.depth = max(a.depth, int64(e.Scroll))
		}
	}
	out := map[string]store.Engagement{}
	for k, a := range perVisit {
		if !viewed[k] {
			continue
		}
		e := out[k.page]
		e.Engaged += a.engaged
		if a.depth > 0 {
			e.Depth += a.depth
			e.Reported++
		}
		out[k.page] = e
	}
	return out
}
