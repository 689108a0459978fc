package storetest

import (
	"slices"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Reference answers queries by walking the events in Go, written straight
// from the definitions in store.Querier's documentation and independent of
// both stores' SQL (including the time bucketing, which uses Go's calendar
// functions rather than store.Buckets' arithmetic).
type Reference struct {
	events []event.Event
}

// NewReference returns a reference over evs (not copied).
func NewReference(evs []event.Event) *Reference { return &Reference{events: evs} }

// refSession is a visit: all of a session's rows, wherever they fall.
type refSession struct {
	rows      []*event.Event
	visitor   uint64
	start     int64
	end       int64
	pvAll     int64
	evAll     int64
	pv, ev    int64 // counted (filtered) rows
	engaged   int64 // visible milliseconds of its pings and leaves
	qualified bool
}

func (s *refSession) bounce() bool { return s.pvAll == 1 && s.evAll == 0 }

// duration is the visible time in whole seconds when the visit reported
// any, else the time from its first to its last row.
func (s *refSession) duration() int64 {
	if s.engaged > 0 {
		return s.engaged / 1000
	}
	return s.end - s.start
}

func counted(e *event.Event) bool {
	return e.Type == event.Pageview || e.Type == event.Custom
}

// applies reports whether a row-level filter looks at rows like e.
func applies(f store.Filter, e *event.Event) bool {
	switch f.Dimension.Level() {
	case store.LevelPage:
		return counted(e)
	case store.LevelEvent:
		return e.Type == event.Custom
	}
	return false
}

// rowValue returns e's value of a row dimension, and whether it has one.
func rowValue(d store.Dimension, e *event.Event) (string, bool) {
	switch d.Base() {
	case store.DimPage:
		return e.Pathname, true
	case store.DimHostname:
		return e.Hostname, true
	case store.DimEventName:
		return e.Name, true
	case store.DimEventProp:
		v, ok := e.Props[d.PropKey()]
		return v, ok
	}
	panic("not a row dimension: " + string(d))
}

// positive reports whether value matches f ignoring negation.
func positive(f store.Filter, value string, has bool) bool {
	if !has {
		return false
	}
	for _, v := range f.Values {
		if f.Op == store.OpContains && strings.Contains(value, v) || f.Op != store.OpContains && value == v {
			return true
		}
	}
	return false
}

// sessionValue returns a session dimension's value for s.
func sessionValue(d store.Dimension, s *refSession) string {
	type key struct {
		ms  int64
		val string
	}
	less := func(a, b key) bool { return a.ms < b.ms || a.ms == b.ms && a.val < b.val }
	var best *key
	consider := func(k key, wantMax bool) {
		if best == nil || (!wantMax && less(k, *best)) || (wantMax && less(*best, k)) {
			best = &k
		}
	}
	for _, e := range s.rows {
		ms := e.Time.UnixMilli()
		switch d {
		case store.DimEntryPage, store.DimExitPage:
			if e.Type == event.Pageview {
				consider(key{ms, e.Pathname}, d == store.DimExitPage)
			}
		default:
			if counted(e) {
				consider(key{ms, attr(d, e)}, false)
			}
		}
	}
	if best == nil {
		return ""
	}
	return best.val
}

func attr(d store.Dimension, e *event.Event) string {
	switch d {
	case store.DimReferrer:
		return e.ReferrerHost
	case store.DimChannel:
		return e.Channel
	case store.DimUTMSource:
		return e.UTMSource
	case store.DimUTMMedium:
		return e.UTMMedium
	case store.DimUTMCampaign:
		return e.UTMCampaign
	case store.DimUTMTerm:
		return e.UTMTerm
	case store.DimUTMContent:
		return e.UTMContent
	case store.DimCountry:
		return e.Country
	case store.DimRegion:
		return e.Region
	case store.DimCity:
		return e.City
	case store.DimDevice:
		return e.Device
	case store.DimBrowser:
		return e.Browser
	case store.DimOS:
		return e.OS
	}
	panic("not a session attribute: " + string(d))
}

// rowCounted reports whether a counted row passes every row-level filter
// that applies to it.
func rowCounted(q store.Query, e *event.Event) bool {
	if !counted(e) {
		return false
	}
	for _, f := range q.Filters {
		if f.Dimension.Level() == store.LevelSession || !applies(f, e) {
			continue
		}
		v, has := rowValue(f.Dimension, e)
		if positive(f, v, has) == f.Op.Negated() {
			return false
		}
	}
	return true
}

// eval selects q's visits (those that started in the range) and their
// counted rows.
func (r *Reference) eval(q store.Query) (map[uint64]*refSession, []*event.Event) {
	sessions := map[uint64]*refSession{}
	first := map[uint64]time.Time{}
	for i := range r.events {
		e := &r.events[i]
		if e.SiteID != q.SiteID {
			continue
		}
		s := sessions[e.SessionID]
		if s == nil {
			s = &refSession{visitor: e.VisitorID, start: e.Time.Unix(), end: e.Time.Unix()}
			sessions[e.SessionID] = s
			first[e.SessionID] = e.Time
		}
		s.rows = append(s.rows, e)
		s.visitor = min(s.visitor, e.VisitorID)
		s.start, s.end = min(s.start, e.Time.Unix()), max(s.end, e.Time.Unix())
		s.engaged += int64(e.Engaged)
		if e.Time.Before(first[e.SessionID]) {
			first[e.SessionID] = e.Time
		}
		switch e.Type {
		case event.Pageview:
			s.pvAll++
		case event.Custom:
			s.evAll++
		}
	}
	for id, s := range sessions {
		s.qualified = s.pvAll+s.evAll > 0 && !first[id].Before(q.From) && first[id].Before(q.To)
		for _, f := range q.Filters {
			if !s.qualified {
				break
			}
			if f.Dimension.Level() == store.LevelSession {
				s.qualified = positive(f, sessionValue(f.Dimension, s), true) != f.Op.Negated()
				continue
			}
			if f.Dimension.Level() == store.LevelVisit {
				s.qualified = converted(q, f, s) != f.Op.Negated()
				continue
			}
			found := false
			for _, e := range s.rows {
				if applies(f, e) {
					v, has := rowValue(f.Dimension, e)
					found = found || positive(f, v, has)
				}
			}
			s.qualified = found != f.Op.Negated()
		}
	}
	var rows []*event.Event
	for id, s := range sessions {
		if !s.qualified {
			delete(sessions, id)
			continue
		}
		for _, e := range s.rows {
			if rowCounted(q, e) {
				rows = append(rows, e)
				if e.Type == event.Pageview {
					s.pv++
				} else {
					s.ev++
				}
			}
		}
	}
	return sessions, rows
}

func sessionTotals(ss []*refSession) store.Totals {
	var t store.Totals
	visitors := map[uint64]bool{}
	for _, s := range ss {
		visitors[s.visitor] = true
		t.Visits++
		t.Pageviews += s.pv
		t.Events += s.ev
		t.Duration += s.duration()
		if s.bounce() {
			t.Bounces++
		}
	}
	t.Visitors = int64(len(visitors))
	return t
}

// Totals returns q's sums.
func (r *Reference) Totals(q store.Query) store.Totals {
	sessions, _ := r.eval(q)
	ss := make([]*refSession, 0, len(sessions))
	for _, s := range sessions {
		ss = append(ss, s)
	}
	return sessionTotals(ss)
}

// Overview answers like store.Querier.Overview.
func (r *Reference) Overview(q store.Query) store.Overview { return r.Totals(q).Overview() }

// bucketStart is the start of t's bucket, from Go's calendar.
func bucketStart(t time.Time, loc *time.Location, iv store.Interval) time.Time {
	local := t.In(loc)
	switch iv {
	case store.IntervalMinute:
		return local.Add(-time.Duration(local.Second()) * time.Second)
	case store.IntervalHour:
		start := local.Add(-time.Duration(local.Minute()*60+local.Second()) * time.Second)
		if zoneStart, _ := local.ZoneBounds(); start.Before(zoneStart) {
			return zoneStart
		}
		return start
	case store.IntervalDay:
		return time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	case store.IntervalMonth:
		return time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
	}
	panic("bad interval " + string(iv))
}

// Timeseries returns the non-empty buckets' totals by bucket start (unix
// seconds). Every number counts in the bucket where its visit started.
func (r *Reference) Timeseries(q store.Query, iv store.Interval) map[int64]store.Point {
	sessions, _ := r.eval(q)
	byBucket := map[int64][]*refSession{}
	at := map[int64]time.Time{}
	for _, s := range sessions {
		start := bucketStart(time.Unix(s.start, 0), q.Location, iv)
		byBucket[start.Unix()] = append(byBucket[start.Unix()], s)
		at[start.Unix()] = start
	}
	out := map[int64]store.Point{}
	for k, ss := range byBucket {
		out[k] = sessionTotals(ss).Point(at[k])
	}
	return out
}

// Breakdown answers like store.Querier.Breakdown.
func (r *Reference) Breakdown(q store.Query, dim store.Dimension, limit, offset int) store.Breakdown {
	if dim == store.DimGoal {
		return r.goalBreakdown(q, limit, offset)
	}
	sessions, rows := r.eval(q)
	groups := map[string][]*refSession{}
	if dim.Level() == store.LevelSession {
		for _, s := range sessions {
			v := sessionValue(dim, s)
			groups[v] = append(groups[v], s)
		}
	}
	// For row dimensions: the sessions per value, and the matching rows.
	type rowAcc struct{ pv, ev int64 }
	rowCounts := map[string]*rowAcc{}
	if dim.Level() != store.LevelSession {
		member := map[string]map[uint64]bool{}
		for _, e := range rows {
			if dim.Level() == store.LevelEvent && e.Type != event.Custom {
				continue
			}
			v, has := rowValue(dim, e)
			if !has {
				continue
			}
			if member[v] == nil {
				member[v] = map[uint64]bool{}
				rowCounts[v] = &rowAcc{}
			}
			if e.Type == event.Pageview {
				rowCounts[v].pv++
			} else {
				rowCounts[v].ev++
			}
			if !member[v][e.SessionID] {
				member[v][e.SessionID] = true
				groups[v] = append(groups[v], sessions[e.SessionID])
			}
		}
	}
	out := store.Breakdown{Rows: []store.Row{}}
	for v, ss := range groups {
		t := sessionTotals(ss)
		if rc := rowCounts[v]; rc != nil {
			t.Pageviews, t.Events = rc.pv, rc.ev
		}
		out.Rows = append(out.Rows, t.Row(v))
	}
	if dim == store.DimPage {
		eng := engagement(sessions)
		for i := range out.Rows {
			eng[out.Rows[i].Value].SetOn(&out.Rows[i])
		}
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
