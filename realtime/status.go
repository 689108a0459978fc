package realtime

import (
	"context"
	"time"

	"github.com/pocketlytics/pocketlytics/realtime/presence"
)

// Status is the live state of a site, as the polling fallback
// (GET /api/analytics/sites/{siteId}/live) returns it.
type Status struct {
	// Count is the live visitor count.
	Count int `json:"count"`
	// Push tells whether live messages are also pushed over realtime SSE.
	Push bool `json:"push"`
	// Window is the live window in seconds.
	Window int `json:"window"`
	// Arrivals are the most recent arrivals of visitors still live, newest
	// first, with location, device, entry page and current page.
	Arrivals []presence.LiveArrival `json:"arrivals"`
	// Pages counts live visitors by current page, Referrers by referrer host.
	Pages     []presence.Tally `json:"pages"`
	Referrers []presence.Tally `json:"referrers"`
	// Online is the per-minute "visitors online" series of today.
	Online Series `json:"online"`
}

// Series is a per-minute series: Counts[i] is the count sampled at
// Start + i*Step seconds.
type Series struct {
	Start  time.Time `json:"start"`
	Step   int       `json:"step"`
	Counts []int     `json:"counts"`
}

// Status returns the live state of a site from the live layer's own state
// (never the analytics store). Today starts at midnight in loc; arrivals
// bounds the arrivals list.
func (l *Live) Status(ctx context.Context, site string, loc *time.Location, arrivals int) (*Status, error) {
	if loc == nil {
		loc = time.UTC
	}
	snap, err := l.store.Snapshot(ctx, site, arrivals)
	if err != nil {
		return nil, err
	}
	l.announce([]presence.Pruned{snap.Pruned})

	now := time.Now().In(loc)
	y, m, d := now.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	counts, err := l.store.Series(ctx, site, start, now)
	if err != nil {
		return nil, err
	}

	st := &Status{
		Count:     snap.Count,
		Push:      l.Push(),
		Window:    int(l.cfg.Window / time.Second),
		Arrivals:  snap.Arrivals,
		Pages:     snap.Pages,
		Referrers: snap.Referrers,
		Online:    Series{Start: start, Step: 60, Counts: counts},
	}
	if st.Arrivals == nil {
		st.Arrivals = []presence.LiveArrival{}
	}
	if st.Pages == nil {
		st.Pages = []presence.Tally{}
	}
	if st.Referrers == nil {
		st.Referrers = []presence.Tally{}
	}
	return st, nil
}

// Counts returns the live visitor count of each site, the count the
// dashboards show (traffic alerts compare it with their threshold).
func (l *Live) Counts(ctx context.Context, sites ...string) (map[string]int, error) {
	pruned, err := l.store.Prune(ctx, sites...)
	if err != nil {
		return nil, err
	}
	l.announce(pruned)
	counts := make(map[string]int, len(pruned))
	for _, p := range pruned {
		counts[p.Site] = p.Count
	}
	return counts, nil
}
