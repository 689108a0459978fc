// Package presence keeps the live visitor state of every site: who is online
// (a sliding window of last activity), their current page and referrer, the
// most recent arrivals and a per-minute "visitors online" series.
//
// Two implementations share one set of rules: Memory for a single process and
// Redis for several instances that must agree on the numbers.
//
// Rules:
//
//   - A visitor is live while the last hit (pageview, event or ping) is younger
//     than the window. Visitors are keyed by an opaque per-day visitor key, so
//     several tabs of one visitor count once.
//   - A leave does not remove the visitor at once: it starts a short grace
//     period. Any later hit from the same visitor cancels it (a full-page
//     navigation sends leave for the old page and a pageview for the new one;
//     a second open tab keeps pinging). Without one the visitor is removed when
//     the grace period ends (Settle) and reported as Left. Hits stamped before
//     the leave are stale and ignored.
//   - Nothing depends on a process staying alive: every entry carries its
//     expiry time, reads drop what has expired (reporting it as Expired) and
//     Redis keys expire on their own.
//
// Example:
//
//	st := presence.NewMemory(presence.Options{Window: 5 * time.Minute})
//	res, _ := st.Touch(ctx, []presence.Sighting{{Site: "s1", Visitor: "ab12", At: time.Now(), Kind: presence.Pageview, Page: "/"}})
//	if res[0].Arrived { ... }
//	pr, _ := st.Prune(ctx, "s1") // pr[0].Count is the live count
package presence

import (
	"context"
	"sort"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// Kind is what a hit means for presence.
type Kind uint8

const (
	// Activity keeps a visitor live without changing the current page (custom
	// events, pings). On arrival its page becomes the current page.
	Activity Kind = iota
	// Pageview keeps a visitor live and sets the current page.
	Pageview
	// Leave starts the visitor's grace period.
	Leave
)

// Defaults for Options' zero values.
const (
	DefaultWindow   = config.LiveWindow
	DefaultGrace    = 5 * time.Second
	DefaultArrivals = 100
	DefaultPrefix   = "live"
)

// Options configure a Store. Zero values mean the defaults.
type Options struct {
	// Window is how long a visitor stays live after the last hit (default config.LiveWindow).
	Window time.Duration
	// Grace is how long a leave waits for another hit of the same visitor
	// before the visitor is removed (default 5s).
	Grace time.Duration
	// Arrivals is how many recent arrivals are kept per site (default 100).
	Arrivals int
	// Prefix starts every Redis key (default "live").
	Prefix string
	// Now is the clock used for reads and expiry (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Grace > o.Window {
		o.Grace = o.Window
	}
	if o.Arrivals <= 0 {
		o.Arrivals = DefaultArrivals
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Sighting is a visitor seen on a site: what presence keeps of a hit.
type Sighting struct {
	Site    string
	Visitor string // opaque per-day visitor key
	At      time.Time
	Kind    Kind

	// Page is the hit's path. Referrer is the visit's referrer host.
	Page     string
	Referrer string

	// Arrival describes the visitor; it is kept in the recent-arrivals list
	// when this hit makes the visitor live.
	Arrival Arrival
}

// Result tells what a hit changed.
type Result struct {
	// Arrived is set when the visitor was not live before this hit.
	Arrived bool
	// PrevPage is the visitor's current page before this hit (empty on arrival).
	PrevPage string
	// Leaving is set for a Leave hit that started a grace period; the caller
	// calls Settle once the grace period has passed.
	Leaving bool
	// Stale is set for a hit stamped before the visitor's last leave; it was ignored.
	Stale bool
}

// Arrival is one entry of the recent-arrivals list.
type Arrival struct {
	Visitor  string    `json:"visitor"`
	Time     time.Time `json:"time"`
	Entry    string    `json:"entry"`              // first page seen
	Referrer string    `json:"referrer,omitempty"` // referrer host
	Country  string    `json:"country,omitempty"`
	Region   string    `json:"region,omitempty"`
	City     string    `json:"city,omitempty"`
	Lat      float64   `json:"lat,omitempty"`
	Lon      float64   `json:"lon,omitempty"`
	Device   string    `json:"device,omitempty"`
	Browser  string    `json:"browser,omitempty"`
	OS       string    `json:"os,omitempty"`
}

// Departure names a visitor whose grace period should be settled.
type Departure struct {
	Site    string
	Visitor string
	At      time.Time // time of the leave
}

// Pruned is the state of one site after expired visitors were removed.
type Pruned struct {
	Site  string
	Count int
	// Expired lists visitors removed because the window ran out; Left those
	// removed because their grace period ended. Each removal is reported
	// exactly once, by whichever reader removed it.
	Expired []string
	Left    []string
}

// Snapshot is the live state of one site, for the polling API.
type Snapshot struct {
	Count int
	// Arrivals are the most recent arrivals of visitors still live, newest first.
	Arrivals []LiveArrival
	// Pages and Referrers tally the current page and referrer host of live
	// visitors, largest first.
	Pages     []Tally
	Referrers []Tally
	// Pruned holds what this read removed, so the caller can announce it.
	Pruned Pruned
}

// LiveArrival is an arrival with the visitor's current page.
type LiveArrival struct {
	Arrival
	Page string `json:"page"`
}

// Tally is a value and how many live visitors have it.
type Tally struct {
	Value    string `json:"value"`
	Visitors int    `json:"visitors"`
}

// Store is live visitor state. Implementations are safe for concurrent use.
type Store interface {
	// Touch applies hits in order and reports, per hit, what it changed.
	Touch(ctx context.Context, hits []Sighting) ([]Result, error)
	// Settle removes visitors whose leave was not cancelled by a later hit and
	// reports, per departure, whether this call removed it.
	Settle(ctx context.Context, deps []Departure) ([]bool, error)
	// Prune removes expired visitors of the given sites and returns their counts.
	Prune(ctx context.Context, sites ...string) ([]Pruned, error)
	// Snapshot returns the live state of a site, with at most arrivals recent arrivals.
	Snapshot(ctx context.Context, site string, arrivals int) (*Snapshot, error)
	// Sample records the live count of every active site for the current
	// minute. With several instances only one of them records a minute.
	Sample(ctx context.Context) ([]Pruned, error)
	// Series returns the sampled counts of the minutes from..to (inclusive,
	// truncated to minutes), zero where none was recorded. At most the last
	// 24 hours are kept in memory, 48 in Redis.
	Series(ctx context.Context, site string, from, to time.Time) ([]int, error)
}

// maxSeries bounds a Series request: one day and a bit (DST days have 25 hours).
const maxSeries = 25 * 60

func seriesBounds(from, to time.Time) (first, n int64) {
	first = from.Unix() / 60
	last := to.Unix() / 60
	n = last - first + 1
	if n < 0 {
		n = 0
	}
	if n > maxSeries {
		first = last - maxSeries + 1
		n = maxSeries
	}
	return first, n
}

func tally(m map[string]int) []Tally {
	out := make([]Tally, 0, len(m))
	for v, n := range m {
		out = append(out, Tally{Value: v, Visitors: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Visitors != out[j].Visitors {
			return out[i].Visitors > out[j].Visitors
		}
		return out[i].Value < out[j].Value
	})
	if len(out) > maxTally {
		out = out[:maxTally]
	}
	return out
}

// maxTally bounds the pages and referrers lists of a Snapshot.
const maxTally = 100

func ms(t time.Time) int64 { return t.UnixMilli() }
