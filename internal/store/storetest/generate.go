// Package storetest holds what the analytics store tests share: a
// deterministic dataset generator that knows its own totals, and Reference,
// a plain-Go evaluation of the query semantics that both stores must match.
//
//	ds := storetest.Generate(storetest.DefaultOptions())
//	// load ds.Events into a store, then for each query:
//	want, _ := storetest.NewReference(ds.Events).Overview(q)
package storetest

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Site is a generated site.
type Site struct {
	ID       string
	Timezone string
}

// Options shape a dataset.
type Options struct {
	Seed uint64
	// Sites get Sessions sessions each, starting uniformly in [From, To).
	Sites    []Site
	Sessions int
	From, To time.Time
	// Edges adds hand-placed sessions around each site's DST changes and
	// around midnight, plus sessions of pings only and of custom events only.
	Edges bool
}

// DefaultOptions is the parity dataset: three sites whose clocks change in
// the window (New York on March 10 2024, Berlin on March 31, Lord Howe Island
// falls back half an hour on April 7), and a UTC site.
func DefaultOptions() Options {
	return Options{
		Seed: 20240331,
		Sites: []Site{
			{ID: "site_berlin", Timezone: "Europe/Berlin"},
			{ID: "site_ny", Timezone: "America/New_York"},
			{ID: "site_lhi", Timezone: "Australia/Lord_Howe"},
			{ID: "site_utc", Timezone: "UTC"},
		},
		Sessions: 1500,
		From:     time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC),
		To:       time.Date(2024, 4, 12, 0, 0, 0, 0, time.UTC),
		Edges:    true,
	}
}

// Dataset is a generated set of events with the totals the generator knows.
type Dataset struct {
	Events []event.Event
	// Truth holds each site's totals over all its events, counted by the
	// generator as it made them (not derived from Events).
	Truth map[string]store.Totals
}

// Generate builds the whole dataset in memory.
func Generate(opts Options) *Dataset {
	ds := &Dataset{}
	ds.Truth, _ = Stream(opts, 1<<30, func(evs []event.Event) error {
		ds.Events = append(ds.Events, evs...)
		return nil
	})
	return ds
}

// Stream generates the dataset in batches of up to batchSize events, for
// datasets too large to hold in memory, and returns the truth (see Dataset).
// It stops at fn's first error. The batch slice is reused: fn must not keep
// it.
func Stream(opts Options, batchSize int, fn func([]event.Event) error) (map[string]store.Totals, error) {
	g := &generator{
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		truth: map[string]store.Totals{},
		seen:  map[string]map[uint64]bool{},
	}
	batch := make([]event.Event, 0, min(batchSize, 1<<16))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := fn(batch)
		batch = batch[:0]
		return err
	}
	emit := func(evs []event.Event) error {
		for _, ev := range evs {
			batch = append(batch, ev)
			if len(batch) >= batchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	span := opts.To.Sub(opts.From)
	for _, site := range opts.Sites {
		loc, err := time.LoadLocation(site.Timezone)
		if err != nil {
			panic(err)
		}
		pool := make([]uint64, max(opts.Sessions*2/3, 1))
		for i := range pool {
			pool[i] = g.id63()
		}
		for range opts.Sessions {
			start := opts.From.Add(time.Duration(g.rng.Int64N(int64(span))).Truncate(time.Millisecond))
			if err := emit(g.session(site.ID, pool[g.rng.IntN(len(pool))], start, kindNormal)); err != nil {
				return nil, err
			}
		}
		if opts.Edges {
			for _, at := range edgeTimes(opts.From, opts.To, loc) {
				for _, kind := range []sessionKind{kindNormal, kindNormal, kindLong, kindPingsOnly, kindEventOnly, kindSameSecond} {
					if err := emit(g.session(site.ID, pool[g.rng.IntN(len(pool))], at, kind)); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return g.truth, nil
}

// edgeTimes are instants just before each DST change and each local midnight
// of the first week in [from, to).
func edgeTimes(from, to time.Time, loc *time.Location) []time.Time {
	var out []time.Time
	for t := from.In(loc); ; {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			break
		}
		out = append(out, end.Add(-25*time.Minute), end.Add(-time.Second))
		t = end
	}
	local := from.In(loc)
	day := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, loc)
	for i := 0; i < 7 && day.Before(to); i++ {
		out = append(out, day.Add(-3*time.Minute), day.Add(-500*time.Millisecond))
		day = day.AddDate(0, 0, 1)
	}
	return out
}

type sessionKind int

const (
	kindNormal sessionKind = iota
	kindLong               // many pageviews over more than an hour
	kindPingsOnly
	kindEventOnly
	kindSameSecond // several pageviews within one second
)

type generator struct {
	rng   *rand.Rand
	truth map[string]store.Totals
	seen  map[string]map[uint64]bool
}

func (g *generator) id63() uint64 { return g.rng.Uint64() >> 1 }

func (g *generator) hexID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return hex.EncodeToString(b[:])
}

func pick[T any](g *generator, xs []T) T { return xs[g.rng.IntN(len(xs))] }

var (
	pages = []string{"/", "/", "/", "/pricing", "/pricing", "/blog/", "/blog/hello-world", "/blog/a|b",
		"/docs", "/docs/install", "/about", "/signup", "/über"}
	hosts  = []string{"example.com", "example.com", "example.com", "www.example.com"}
	places = []struct{ country, region, city string }{
		{"DE", "BE", "Berlin"}, {"DE", "BY", "Munich"}, {"US", "NY", "New York"}, {"US", "CA", "San Francisco"},
		{"FR", "IDF", "Paris"}, {"IN", "MH", "Mumbai"}, {"GB", "ENG", "London"}, {"", "", ""}, {"AU", "NSW", "Lord Howe Island"},
	}
	devices = []struct{ device, browser, os string }{
		{"desktop", "Chrome", "Windows"}, {"desktop", "Firefox", "Linux"}, {"desktop", "Safari", "macOS"},
		{"mobile", "Safari", "iOS"}, {"mobile", "Chrome", "Android"}, {"tablet", "Safari", "iPadOS"},
	}
	sources = []struct{ channel, referrer, source, medium, campaign, term, content string }{
		{"direct", "", "", "", "", "", ""},
		{"direct", "", "", "", "", "", ""},
		{"search", "google.com", "", "", "", "", ""},
		{"search", "duckduckgo.com", "", "", "", "", ""},
		{"social", "t.co", "", "", "", "", ""},
		{"referral", "news.ycombinator.com", "", "", "", "", ""},
		{"paid", "google.com", "google", "cpc", "spring_sale", "analytics", "ad1"},
		{"email", "", "newsletter", "email", "march", "", "footer"},
	}
	customEvents = []struct {
		name  string
		props []map[string]string
	}{
		{"signup", []map[string]string{{"plan": "free"}, {"plan": "pro"}, {"plan": "pro", "trial": "yes"}}},
		{"download", []map[string]string{{"file": "a.pdf"}, {"file": "b.zip"}}},
		{"outbound", []map[string]string{nil}},
	}
)

// session makes one session's events in time order and counts them into the
// truth.
func (g *generator) session(site string, visitor uint64, start time.Time, kind sessionKind) []event.Event {
	sid := g.id63()
	place, dev, src := pick(g, places), pick(g, devices), pick(g, sources)
	host := pick(g, hosts)
	base := event.Event{
		SiteID: site, Hostname: host,
		Country: place.country, Region: place.region, City: place.city,
		Device: dev.device, Browser: dev.browser, OS: dev.os, ScreenWidth: 1280,
		VisitorID: visitor, SessionID: sid,
	}
	var evs []event.Event
	t := start
	add := func(typ string, path string, mutate func(*event.Event)) {
		ev := base
		ev.ID, ev.Time, ev.Type, ev.Pathname, ev.Title = g.hexID(), t.UTC(), typ, path, "Title of "+path
		if mutate != nil {
			mutate(&ev)
		}
		evs = append(evs, ev)
	}
	gap := func() time.Duration {
		switch g.rng.IntN(10) {
		case 0: // same second or nearly
			return time.Duration(g.rng.IntN(1000)) * time.Millisecond
		case 1:
			return time.Duration(600+g.rng.IntN(1200)) * time.Second
		default:
			return time.Duration(2000+g.rng.IntN(180000)) * time.Millisecond
		}
	}

	pageviews := 1
	switch kind {
	case kindNormal:
		if g.rng.IntN(10) >= 4 {
			pageviews = 2 + g.rng.IntN(6)
		}
	case kindLong:
		pageviews = 12
	case kindSameSecond:
		pageviews = 3
	case kindPingsOnly, kindEventOnly:
		pageviews = 0
	}
	path := pick(g, pages)
	for i := 0; i < pageviews; i++ {
		if i > 0 {
			switch kind {
			case kindLong:
				t = t.Add(7 * time.Minute)
			case kindSameSecond:
				t = t.Add(time.Duration(1+g.rng.IntN(300)) * time.Millisecond)
			default:
				t = t.Add(gap())
			}
			path = pick(g, pages)
		}
		first := i == 0
		add(event.Pageview, path, func(ev *event.Event) {
			ev.Entry = first
			if first {
				// Later pageviews are internal navigations: no source.
				ev.ReferrerHost, ev.Channel = src.referrer, src.channel
				ev.UTMSource, ev.UTMMedium, ev.UTMCampaign = src.source, src.medium, src.campaign
				ev.UTMTerm, ev.UTMContent = src.term, src.content
			}
		})
		if g.rng.IntN(3) == 0 {
			d := time.Duration(5+g.rng.IntN(60)) * time.Second
			t = t.Add(d)
			add(event.Ping, path, engage(d))
		}
	}

	customs := 0
	if kind == kindEventOnly || (kind == kindNormal && g.rng.IntN(5) == 0) {
		customs = 1 + g.rng.IntN(2)
	}
	for range customs {
		t = t.Add(gap())
		ce := pick(g, customEvents)
		props := pick(g, ce.props)
		add(event.Custom, path, func(ev *event.Event) {
			ev.Name, ev.Props = ce.name, props
			withRevenue(ev)
			if kind == kindEventOnly {
				ev.ReferrerHost, ev.Channel = src.referrer, src.channel
			}
		})
	}

	if kind == kindPingsOnly {
		for range 3 {
			t = t.Add(30 * time.Second)
			add(event.Ping, path, engage(30*time.Second))
		}
	}
	if g.rng.IntN(3) == 0 {
		d := gap()
		t = t.Add(d)
		add(event.Leave, path, engage(d))
	}

	g.count(site, evs)
	return evs
}

func (g *generator) count(site string, evs []event.Event) {
	tot := g.truth[site]
	var pv, ev int64
	for _, e := range evs {
		switch e.Type {
		case event.Pageview:
			pv++
		case event.Custom:
			ev++
		}
	}
	if pv+ev == 0 {
		return // not a visit
	}
	tot.Visits++
	tot.Pageviews += pv
	tot.Events += ev
	if pv == 1 && ev == 0 {
		tot.Bounces++
	}
	var engaged int64
	for _, e := range evs {
		engaged += int64(e.Engaged)
	}
	if engaged > 0 {
		tot.Duration += engaged / 1000
	} else {
		tot.Duration += evs[len(evs)-1].Time.Unix() - evs[0].Time.Unix()
	}
	if g.seen[site] == nil {
		g.seen[site] = map[uint64]bool{}
	}
	if v := evs[0].VisitorID; !g.seen[site][v] {
		g.seen[site][v] = true
		tot.Visitors++
	}
	g.truth[site] = tot
}

// BenchOptions spreads about rows events of one site over days days (30
// for a month of traffic, 1 for a launch day's).
func BenchOptions(rows, days int) Options {
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	return Options{
		Seed:     1,
		Sites:    []Site{{ID: "bench", Timezone: "Europe/Berlin"}},
		Sessions: max(rows*10/48, 1),
		From:     from,
		To:       from.AddDate(0, 0, max(days, 1)),
	}
}

// BenchQuery is one view of the dashboard.
type BenchQuery struct {
	Name string
	Run  func(ctx context.Context, q store.Querier) error
}

// BenchQueries are the views the benchmarks time over query's range: a
// dashboard's first view, and its overview filtered by a country.
func BenchQueries(query store.Query) []BenchQuery {
	bd := func(dim store.Dimension) BenchQuery {
		return BenchQuery{"top-" + string(dim), func(ctx context.Context, q store.Querier) error {
			_, err := q.Breakdown(ctx, query, dim, 10, 0)
			return err
		}}
	}
	ts := func(iv store.Interval) BenchQuery {
		return BenchQuery{"timeseries-" + string(iv), func(ctx context.Context, q store.Querier) error {
			_, err := q.Timeseries(ctx, query, iv)
			return err
		}}
	}
	filtered := query
	filtered.Filters = []store.Filter{{Dimension: store.DimCountry, Op: store.OpIs, Values: []string{"US"}}}
	return []BenchQuery{
		{"overview", func(ctx context.Context, q store.Querier) error {
			_, err := q.Overview(ctx, query)
			return err
		}},
		ts(store.IntervalHour), ts(store.IntervalDay),
		bd(store.DimPage), bd(store.DimCountry), bd(store.DimEntryPage), bd(store.DimReferrer), bd(store.DimEventName),
		{"overview-country-US", func(ctx context.Context, q store.Querier) error {
			_, err := q.Overview(ctx, filtered)
			return err
		}},
	}
}

// engage sets the engagement of a ping or leave sent d after the previous
// hit: visible all along, scrolled to a depth derived from d (0, as from a
// tracker without scroll depth, for some), so the random sequence is the
// same as without engagement.
func engage(d time.Duration) func(*event.Event) {
	return func(ev *event.Event) {
		ev.Engaged = int(d / time.Millisecond)
		ev.Scroll = int(d/time.Second) * 7 % 101
	}
}
