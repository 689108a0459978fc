package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// KnownSite is the site of KnownEvents.
const KnownSite = "known"

// KnownFrom and KnownTo bound the range CheckKnown queries: 10:00 to 12:00
// UTC on 2024-01-01.
var (
	KnownFrom = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	KnownTo   = KnownFrom.Add(2 * time.Hour)
)

// KnownEvents is a small hand-made dataset whose answers CheckKnown states
// explicitly, worked out by hand from the definitions in store.Querier:
//
//	s1 (visitor 1, DE, search): / 10:00, /pricing 10:01, signup{plan:pro} on /pricing 10:02, ping 10:05 (240 s visible) → 240 s
//	s2 (visitor 1, DE, direct): /pricing 11:00, ping 11:00:30                    → bounce, 30 s
//	s3 (visitor 2, FR):         / 09:59 (before the range), /docs 10:10          → started before: not counted
//	s4 (visitor 3):             ping 10:20 only                                  → not a visit
//	s5 (visitor 4):             / 11:59:59.5, /about 12:00:00.1 (after the range) → whole visit: 2 pageviews, 1 s
//	s6 (visitor 5, US):         /b 10:30:00.1, /a 10:30:00.4, outbound on /a 10:31 → entry /b, exit /a (same second: by millisecond)
//	another site's pageview at 10:00 (must not count)
func KnownEvents() []event.Event {
	at := func(h, m, s, ms int) time.Time { return time.Date(2024, 1, 1, h, m, s, ms*1e6, time.UTC) }
	n := 0
	ev := func(sid, vid uint64, typ, path string, t time.Time, mutate func(*event.Event)) event.Event {
		n++
		e := event.Event{
			ID: string(rune('a'+n)) + "0000000000000000000000000000000", Time: t, SiteID: KnownSite, Type: typ,
			Hostname: "example.com", Pathname: path, VisitorID: vid, SessionID: sid, Device: "desktop",
		}
		if mutate != nil {
			mutate(&e)
		}
		return e
	}
	country := func(c string) func(*event.Event) { return func(e *event.Event) { e.Country = c } }
	return []event.Event{
		ev(1, 1, event.Pageview, "/", at(10, 0, 0, 0), func(e *event.Event) {
			e.Country, e.Channel, e.ReferrerHost, e.Entry = "DE", "search", "google.com", true
		}),
		ev(1, 1, event.Pageview, "/pricing", at(10, 1, 0, 0), country("DE")),
		ev(1, 1, event.Custom, "/pricing", at(10, 2, 0, 0), func(e *event.Event) { e.Country, e.Name, e.Props = "DE", "signup", map[string]string{"plan": "pro"} }),
		ev(1, 1, event.Ping, "/pricing", at(10, 5, 0, 0), func(e *event.Event) { e.Country, e.Engaged, e.Scroll = "DE", 240000, 60 }),
		ev(2, 1, event.Pageview, "/pricing", at(11, 0, 0, 0), func(e *event.Event) { e.Country, e.Channel, e.Entry = "DE", "direct", true }),
		ev(2, 1, event.Ping, "/pricing", at(11, 0, 30, 0), func(e *event.Event) { e.Country, e.Engaged = "DE", 30000 }),
		ev(3, 2, event.Pageview, "/", at(9, 59, 0, 0), func(e *event.Event) { e.Country, e.Entry = "FR", true }),
		ev(3, 2, event.Pageview, "/docs", at(10, 10, 0, 0), country("FR")),
		ev(4, 3, event.Ping, "/", at(10, 20, 0, 0), func(e *event.Event) { e.Engaged, e.Scroll = 5000, 90 }),
		ev(5, 4, event.Pageview, "/", at(11, 59, 59, 500), nil),
		ev(5, 4, event.Pageview, "/about", at(12, 0, 0, 100), nil),
		ev(6, 5, event.Pageview, "/b", at(10, 30, 0, 100), func(e *event.Event) { e.Country, e.Entry = "US", true }),
		ev(6, 5, event.Pageview, "/a", at(10, 30, 0, 400), country("US")),
		ev(6, 5, event.Custom, "/a", at(10, 31, 0, 0), func(e *event.Event) { e.Country, e.Name = "US", "outbound" }),
		ev(7, 6, event.Pageview, "/", at(10, 0, 0, 0), func(e *event.Event) { e.SiteID = "other" }),
	}
}

// CheckKnown queries KnownEvents (already loaded into q's store) and compares
// the answers with the ones worked out by hand.
func CheckKnown(t *testing.T, q store.Querier) {
	t.Helper()
	ctx := context.Background()
	query := func(filters ...store.Filter) store.Query {
		return store.Query{SiteID: KnownSite, From: KnownFrom, To: KnownTo, Location: time.UTC, Filters: filters}
	}
	ov := func(visitors, visits, pageviews, events int64, vpv, bounce float64, dur int64) store.Overview {
		return store.Overview{Visitors: visitors, Visits: visits, Pageviews: pageviews, Events: events,
			ViewsPerVisit: vpv, BounceRate: bounce, VisitDuration: dur}
	}
	overviews := []struct {
		name string
		q    store.Query
		want store.Overview
	}{
		{"all", query(), ov(3, 4, 7, 2, 1.75, 25, 83)},
		{"page is /pricing: its visits, its pageviews", query(flt(store.DimPage, store.OpIs, "/pricing")), ov(1, 2, 2, 1, 1, 50, 135)},
		{"country is DE", query(flt(store.DimCountry, store.OpIs, "DE")), ov(1, 2, 3, 1, 1.5, 50, 135)},
		{"entry_page is /b: the first of one second, 300 ms before /a", query(flt(store.DimEntryPage, store.OpIs, "/b")), ov(1, 1, 2, 1, 2, 0, 60)},
		{"entry_page is /a: 300 ms after /b", query(flt(store.DimEntryPage, store.OpIs, "/a")), ov(0, 0, 0, 0, 0, 0, 0)},
		{"entry_page is /docs: s3 started before the range", query(flt(store.DimEntryPage, store.OpIs, "/docs")), ov(0, 0, 0, 0, 0, 0, 0)},
		{"channel is search: from the first pageview", query(flt(store.DimChannel, store.OpIs, "search")), ov(1, 1, 2, 1, 2, 0, 240)},
		{"event_name is signup: pageviews of those visits", query(flt(store.DimEventName, store.OpIs, "signup")), ov(1, 1, 2, 1, 2, 0, 240)},
		{"event_name is_not signup", query(flt(store.DimEventName, store.OpIsNot, "signup")), ov(3, 3, 5, 1, 1.67, 33.3, 30)},
		{"event_prop:plan is pro", query(flt(store.PropDimension("plan"), store.OpIs, "pro")), ov(1, 1, 2, 1, 2, 0, 240)},
		{"other site", store.Query{SiteID: "other", From: KnownFrom, To: KnownTo}, ov(1, 1, 1, 0, 1, 100, 0)},
		{"nothing", store.Query{SiteID: "none", From: KnownFrom, To: KnownTo}, ov(0, 0, 0, 0, 0, 0, 0)},
	}
	for _, tt := range overviews {
		t.Run("overview/"+tt.name, func(t *testing.T) {
			got, err := q.Overview(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	row := func(v string, visitors, visits, pageviews, events int64, bounce float64, dur int64) store.Row {
		return store.Row{Value: v, Visitors: visitors, Visits: visits, Pageviews: pageviews, Events: events, BounceRate: bounce, VisitDuration: dur}
	}
	// Pages add the engagement of their visits' pings: /pricing 240 s
	// (scrolled to 60%) in s1 and 30 s (no scroll reported) in s2; s4's
	// ping is no visit.
	page := func(r store.Row, timeOnPage, scrollDepth int64) store.Row {
		r.TimeOnPage, r.ScrollDepth = &timeOnPage, &scrollDepth
		return r
	}
	breakdowns := []struct {
		name          string
		dim           store.Dimension
		limit, offset int
		want          store.Breakdown
	}{
		{"pages", store.DimPage, 10, 0, store.Breakdown{Total: 5, Rows: []store.Row{
			page(row("/", 2, 2, 2, 0, 0, 121), 0, 0), page(row("/a", 1, 1, 1, 1, 0, 60), 0, 0), page(row("/about", 1, 1, 1, 0, 0, 1), 0, 0),
			page(row("/b", 1, 1, 1, 0, 0, 60), 0, 0), page(row("/pricing", 1, 2, 2, 1, 50, 135), 135, 60)}}},
		{"pages, second page of two", store.DimPage, 2, 2, store.Breakdown{Total: 5, Rows: []store.Row{
			page(row("/about", 1, 1, 1, 0, 0, 1), 0, 0), page(row("/b", 1, 1, 1, 0, 0, 60), 0, 0)}}},
		{"past the end", store.DimPage, 2, 10, store.Breakdown{Total: 5, Rows: []store.Row{}}},
		{"exit pages", store.DimExitPage, 10, 0, store.Breakdown{Total: 3, Rows: []store.Row{
			row("/a", 1, 1, 2, 1, 0, 60), row("/about", 1, 1, 2, 0, 0, 1), row("/pricing", 1, 2, 3, 1, 50, 135)}}},
		{"countries", store.DimCountry, 10, 0, store.Breakdown{Total: 3, Rows: []store.Row{
			row("", 1, 1, 2, 0, 0, 1), row("DE", 1, 2, 3, 1, 50, 135), row("US", 1, 1, 2, 1, 0, 60)}}},
		{"events", store.DimEventName, 10, 0, store.Breakdown{Total: 2, Rows: []store.Row{
			row("outbound", 1, 1, 0, 1, 0, 60), row("signup", 1, 1, 0, 1, 0, 240)}}},
		{"plans", store.PropDimension("plan"), 10, 0, store.Breakdown{Total: 1, Rows: []store.Row{
			row("pro", 1, 1, 0, 1, 0, 240)}}},
	}
	for _, tt := range breakdowns {
		t.Run("breakdown/"+tt.name, func(t *testing.T) {
			got, err := q.Breakdown(ctx, query(), tt.dim, tt.limit, tt.offset)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	// s6 views /b, then /a 300 ms later in the same second.
	funnels := []struct {
		name    string
		steps   []store.Goal
		reached []int64
	}{
		{"/b then /a, in the order of their milliseconds", []store.Goal{{Page: "/b"}, {Page: "/a"}}, []int64{1, 1}},
		{"/a then /b, against it", []store.Goal{{Page: "/a"}, {Page: "/b"}}, []int64{1, 0}},
	}
	for _, tt := range funnels {
		t.Run("funnel/"+tt.name, func(t *testing.T) {
			got, err := q.Funnel(ctx, query(), tt.steps)
			if err != nil {
				t.Fatal(err)
			}
			if want := store.FunnelSteps(tt.steps, tt.reached); !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
	}

	t.Run("timeseries/hour", func(t *testing.T) {
		got, err := q.Timeseries(ctx, query(), store.IntervalHour)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Point{
			{Time: KnownFrom, Visitors: 2, Visits: 2, Pageviews: 4, Events: 2, VisitDuration: 150},
			{Time: KnownFrom.Add(time.Hour), Visitors: 2, Visits: 2, Pageviews: 3, BounceRate: 50, VisitDuration: 16},
		}
		if len(got) != len(want) {
			t.Fatalf("got %d points, want %d", len(got), len(want))
		}
		for i := range want {
			if !got[i].Time.Equal(want[i].Time) {
				t.Fatalf("point %d at %s, want %s", i, got[i].Time, want[i].Time)
			}
			got[i].Time = want[i].Time
			if got[i] != want[i] {
				t.Fatalf("point %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	})
	t.Run("timeseries/minute has empty buckets", func(t *testing.T) {
		got, err := q.Timeseries(ctx, query(), store.IntervalMinute)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 120 {
			t.Fatalf("got %d points, want 120", len(got))
		}
		if p := got[0]; p.Visitors != 1 || p.Pageviews != 2 || p.Visits != 1 {
			t.Fatalf("10:00: got %+v, want s1: 1 visitor, its 2 pageviews, 1 visit", p)
		}
		if p := got[1]; (p != store.Point{Time: p.Time}) {
			t.Fatalf("10:01: got %+v, want an empty bucket (s1's pageview counts where s1 started)", p)
		}
		if p := got[3]; (p != store.Point{Time: p.Time}) {
			t.Fatalf("10:03: got %+v, want an empty bucket", p)
		}
	})
}

// Querier wraps the reference as a store.Querier, for CheckKnown.
func (r *Reference) Querier() store.Querier { return refQuerier{r} }

type refQuerier struct{ r *Reference }

func (rq refQuerier) Overview(_ context.Context, q store.Query) (store.Overview, error) {
	if err := q.Validate(); err != nil {
		return store.Overview{}, err
	}
	return rq.r.Overview(q), nil
}

func (rq refQuerier) Timeseries(_ context.Context, q store.Query, iv store.Interval) ([]store.Point, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	b, err := store.NewBuckets(q, iv)
	if err != nil {
		return nil, err
	}
	points := rq.r.Timeseries(q, iv)
	out := make([]store.Point, b.Len())
	for i, at := range b.Starts() {
		out[i] = store.Point{Time: at}
		if p, ok := points[at.Unix()]; ok {
			out[i] = p
		}
	}
	return out, nil
}

func (rq refQuerier) Breakdown(_ context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	if err := q.Validate(); err != nil {
		return store.Breakdown{}, err
	}
	return rq.r.Breakdown(q, dim, limit, offset), nil
}

func (rq refQuerier) Funnel(_ context.Context, q store.Query, steps []store.Goal) ([]store.FunnelStep, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := store.ValidateSteps(steps); err != nil {
		return nil, err
	}
	return rq.r.Funnel(q, steps), nil
}
