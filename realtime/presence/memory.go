package presence

import (
	"context"
	"sync"
	"time"
)

// Memory is the single-process Store.
type Memory struct {
	opts Options

	mu    sync.Mutex
	sites map[string]*memSite
}

var _ Store = (*Memory)(nil)

type memSite struct {
	visitors map[string]*memVisitor
	left     map[string]int64 // visitor → leave time (ms) while a leave is pending or recent
	arrivals []Arrival        // ring of opts.Arrivals entries
	next     int              // next ring slot
	online   [1440]memSample  // ring by minute of the day
	lastSeen int64            // ms of the last hit, to forget idle sites
}

type memVisitor struct {
	expires int64 // ms
	page    string
	ref     string
}

type memSample struct {
	minute int64 // unix minute
	n      int
}

// NewMemory returns an empty in-process Store.
func NewMemory(opts Options) *Memory {
	return &Memory{opts: opts.withDefaults(), sites: map[string]*memSite{}}
}

func (m *Memory) site(id string) *memSite {
	s := m.sites[id]
	if s == nil {
		s = &memSite{
			visitors: map[string]*memVisitor{},
			left:     map[string]int64{},
			arrivals: make([]Arrival, 0, m.opts.Arrivals),
		}
		m.sites[id] = s
	}
	return s
}

// Touch implements Store.
func (m *Memory) Touch(_ context.Context, hits []Sighting) ([]Result, error) {
	now := ms(m.opts.Now())
	window := m.opts.Window.Milliseconds()
	grace := m.opts.Grace.Milliseconds()

	m.mu.Lock()
	defer m.mu.Unlock()

	out := make([]Result, len(hits))
	for i, h := range hits {
		s := m.site(h.Site)
		at := ms(h.At)
		if at > s.lastSeen {
			s.lastSeen = at
		}
		v := s.visitors[h.Visitor]

		if h.Kind == Leave {
			// Only a live visitor whose last hit is not newer than the leave.
			if v == nil || v.expires <= now || v.expires > at+window {
				continue
			}
			v.expires = min(v.expires, at+grace)
			if at > s.left[h.Visitor] {
				s.left[h.Visitor] = at
			}
			out[i].Leaving = true
			continue
		}

		if l, ok := s.left[h.Visitor]; ok {
			if at <= l {
				out[i].Stale = true
				continue
			}
			delete(s.left, h.Visitor) // a newer hit cancels the leave
		}

		arrived := v == nil || v.expires <= now
		if v == nil {
			v = &memVisitor{}
			s.visitors[h.Visitor] = v
		}
		v.expires = max(v.expires, at+window)
		if arrived {
			v.page, v.ref = h.Page, h.Referrer
			s.pushArrival(h.Arrival)
			out[i].Arrived = true
			continue
		}
		out[i].PrevPage = v.page
		if h.Kind == Pageview {
			v.page = h.Page
		}
	}
	return out, nil
}

func (s *memSite) pushArrival(a Arrival) {
	if len(s.arrivals) < cap(s.arrivals) {
		s.arrivals = append(s.arrivals, a)
		return
	}
	s.arrivals[s.next] = a
	s.next = (s.next + 1) % len(s.arrivals)
}

// Settle implements Store.
func (m *Memory) Settle(_ context.Context, deps []Departure) ([]bool, error) {
	now := ms(m.opts.Now())

	m.mu.Lock()
	defer m.mu.Unlock()

	out := make([]bool, len(deps))
	for i, d := range deps {
		s := m.sites[d.Site]
		if s == nil {
			continue
		}
		if l, ok := s.left[d.Visitor]; !ok || l != ms(d.At) {
			continue // cancelled, superseded or already removed
		}
		if v := s.visitors[d.Visitor]; v != nil && v.expires > max(now, ms(d.At)+m.opts.Grace.Milliseconds()) {
			continue
		}
		delete(s.left, d.Visitor)
		delete(s.visitors, d.Visitor)
		out[i] = true
	}
	return out, nil
}

// Prune implements Store.
func (m *Memory) Prune(_ context.Context, sites ...string) ([]Pruned, error) {
	now := ms(m.opts.Now())

	m.mu.Lock()
	defer m.mu.Unlock()

	out := make([]Pruned, len(sites))
	for i, id := range sites {
		out[i] = m.prune(id, now)
	}
	return out, nil
}

func (m *Memory) prune(id string, now int64) Pruned {
	p := Pruned{Site: id}
	s := m.sites[id]
	if s == nil {
		return p
	}
	for k, v := range s.visitors {
		if v.expires > now {
			continue
		}
		delete(s.visitors, k)
		if _, ok := s.left[k]; ok {
			delete(s.left, k)
			p.Left = append(p.Left, k)
		} else {
			p.Expired = append(p.Expired, k)
		}
	}
	cutoff := now - m.opts.Window.Milliseconds()
	for k, l := range s.left {
		if l <= cutoff {
			delete(s.left, k)
		}
	}
	p.Count = len(s.visitors)
	return p
}

// Snapshot implements Store.
func (m *Memory) Snapshot(_ context.Context, id string, arrivals int) (*Snapshot, error) {
	now := ms(m.opts.Now())

	m.mu.Lock()
	defer m.mu.Unlock()

	snap := &Snapshot{Pruned: m.prune(id, now)}
	snap.Count = snap.Pruned.Count
	s := m.sites[id]
	if s == nil {
		return snap, nil
	}

	pages := map[string]int{}
	refs := map[string]int{}
	for _, v := range s.visitors {
		pages[v.page]++
		if v.ref != "" {
			refs[v.ref]++
		}
	}
	snap.Pages = tally(pages)
	snap.Referrers = tally(refs)

	seen := map[string]bool{}
	n := len(s.arrivals)
	for i := 0; i < n && len(snap.Arrivals) < arrivals; i++ {
		a := s.arrivals[((s.next-1-i)%n+n)%n] // newest first
		v := s.visitors[a.Visitor]
		if v == nil || seen[a.Visitor] {
			continue
		}
		seen[a.Visitor] = true
		snap.Arrivals = append(snap.Arrivals, LiveArrival{Arrival: a, Page: v.page})
	}
	return snap, nil
}

// Sample implements Store.
func (m *Memory) Sample(_ context.Context) ([]Pruned, error) {
	t := m.opts.Now()
	now := ms(t)
	minute := t.Unix() / 60

	m.mu.Lock()
	defer m.mu.Unlock()

	var out []Pruned
	for id, s := range m.sites {
		p := m.prune(id, now)
		if p.Count > 0 || len(p.Expired) > 0 || len(p.Left) > 0 {
			out = append(out, p)
		}
		if p.Count > 0 {
			s.online[minute%1440] = memSample{minute: minute, n: p.Count}
			continue
		}
		// Forget a site that has been idle for a day: its series is all zeros.
		if len(s.left) == 0 && now-s.lastSeen > (24*time.Hour).Milliseconds() {
			delete(m.sites, id)
		}
	}
	return out, nil
}

// Series implements Store.
func (m *Memory) Series(_ context.Context, id string, from, to time.Time) ([]int, error) {
	first, n := seriesBounds(from, to)
	out := make([]int, n)

	m.mu.Lock()
	defer m.mu.Unlock()

	s := m.sites[id]
	if s == nil {
		return out, nil
	}
	for i := range out {
		minute := first + int64(i)
		if smp := s.online[((minute%1440)+1440)%1440]; smp.minute == minute {
			out[i] = smp.n
		}
	}
	return out, nil
}
