package storetest

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Span is a named query range with the intervals to chart it at.
type Span struct {
	Name      string
	From, To  time.Time
	Intervals []store.Interval
}

// Spans returns the ranges the checks query for a site: all of its data, the
// local day and week of its first DST change in the window, a calendar month,
// the minutes around the change, and an unaligned range that cuts sessions.
func Spans(opts Options, loc *time.Location) []Span {
	day := func(t time.Time) time.Time {
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	}
	change := opts.From.Add(5 * 24 * time.Hour) // sites without DST: any day
	if _, end := opts.From.In(loc).ZoneBounds(); !end.IsZero() && end.Before(opts.To) {
		change = end
	}
	first := day(opts.From)
	march := time.Date(2024, 3, 1, 0, 0, 0, 0, loc)
	return []Span{
		{"all", opts.From.Add(-24 * time.Hour), opts.To.Add(48 * time.Hour), []store.Interval{store.IntervalDay, store.IntervalMonth}},
		{"dst-day", day(change), day(change).AddDate(0, 0, 1), []store.Interval{store.IntervalHour, store.IntervalMinute}},
		{"dst-week", day(change).AddDate(0, 0, -3), day(change).AddDate(0, 0, 4), []store.Interval{store.IntervalDay, store.IntervalHour}},
		{"march", march, march.AddDate(0, 1, 0), []store.Interval{store.IntervalMonth, store.IntervalDay}},
		{"dst-minutes", change.Add(-40 * time.Minute), change.Add(40 * time.Minute), []store.Interval{store.IntervalMinute}},
		{"clip", first.Add(3*24*time.Hour + 12*time.Hour + 7*time.Minute + 13*time.Second), first.Add(4*24*time.Hour + 12*time.Hour), []store.Interval{store.IntervalHour}},
	}
}

// allTime is a query over all of a site's generated events.
func allTime(opts Options, site string) store.Query {
	return store.Query{SiteID: site, From: opts.From.Add(-24 * time.Hour), To: opts.To.Add(48 * time.Hour)}
}

// FilterSet is a named list of filters.
type FilterSet struct {
	Name    string
	Filters []store.Filter
}

func flt(d store.Dimension, op store.Op, values ...string) store.Filter {
	return store.Filter{Dimension: d, Op: op, Values: values}
}

// FilterSets covers every dimension level and operator, values with a "|"
// and non-ASCII bytes, the empty value and combinations.
func FilterSets() []FilterSet {
	return []FilterSet{
		{"none", nil},
		{"country is DE", []store.Filter{flt(store.DimCountry, store.OpIs, "DE")}},
		{"country is_not DE|US", []store.Filter{flt(store.DimCountry, store.OpIsNot, "DE", "US")}},
		{"country is empty", []store.Filter{flt(store.DimCountry, store.OpIs, "")}},
		{"page is /pricing", []store.Filter{flt(store.DimPage, store.OpIs, "/pricing")}},
		{"page contains blog", []store.Filter{flt(store.DimPage, store.OpContains, "blog")}},
		{"page is_not /", []store.Filter{flt(store.DimPage, store.OpIsNot, "/")}},
		{"page is /blog/a|b or /über", []store.Filter{flt(store.DimPage, store.OpIs, "/blog/a|b", "/über")}},
		{"page contains docs|Blog", []store.Filter{flt(store.DimPage, store.OpContains, "docs", "Blog")}},
		{"entry_page is /", []store.Filter{flt(store.DimEntryPage, store.OpIs, "/")}},
		{"exit_page contains doc", []store.Filter{flt(store.DimExitPage, store.OpContains, "doc")}},
		{"hostname is www", []store.Filter{flt(store.DimHostname, store.OpIs, "www.example.com")}},
		{"referrer is direct", []store.Filter{flt(store.DimReferrer, store.OpIs, "")}},
		{"channel is search|social", []store.Filter{flt(store.DimChannel, store.OpIs, "search", "social")}},
		{"utm_campaign is spring_sale", []store.Filter{flt(store.DimUTMCampaign, store.OpIs, "spring_sale")}},
		{"event_name is signup", []store.Filter{flt(store.DimEventName, store.OpIs, "signup")}},
		{"event_name is_not outbound", []store.Filter{flt(store.DimEventName, store.OpIsNot, "outbound")}},
		{"event_prop:plan is pro", []store.Filter{flt(store.PropDimension("plan"), store.OpIs, "pro")}},
		{"event_prop:plan is_not pro", []store.Filter{flt(store.PropDimension("plan"), store.OpIsNot, "pro")}},
		{"event_prop:file contains .pdf", []store.Filter{flt(store.PropDimension("file"), store.OpContains, ".pdf")}},
		{"device mobile and browser Safari", []store.Filter{flt(store.DimDevice, store.OpIs, "mobile"), flt(store.DimBrowser, store.OpIs, "Safari")}},
		{"city contains an, region not empty", []store.Filter{flt(store.DimCity, store.OpContains, "an"), flt(store.DimRegion, store.OpIsNot, "")}},
		{"DE and /pricing and signup", []store.Filter{flt(store.DimCountry, store.OpIs, "DE"), flt(store.DimPage, store.OpIs, "/pricing"), flt(store.DimEventName, store.OpIs, "signup")}},
		{"page /pricing and hostname example.com", []store.Filter{flt(store.DimPage, store.OpIs, "/pricing"), flt(store.DimHostname, store.OpIs, "example.com")}},
		{"os contains OS, page is_not /about, utm_medium is_not cpc", []store.Filter{flt(store.DimOS, store.OpContains, "OS"), flt(store.DimPage, store.OpIsNot, "/about"), flt(store.DimUTMMedium, store.OpIsNot, "cpc")}},
	}
}

// FilterSetsNamed returns the named filter sets.
func FilterSetsNamed(names ...string) []FilterSet {
	var out []FilterSet
	for _, n := range names {
		for _, fs := range FilterSets() {
			if fs.Name == n {
				out = append(out, fs)
			}
		}
	}
	if len(out) != len(names) {
		panic(fmt.Sprintf("storetest: unknown filter set among %q", names))
	}
	return out
}

// BreakdownDims are all dimensions, with present and absent property keys.
func BreakdownDims() []store.Dimension {
	return []store.Dimension{
		store.DimPage, store.DimEntryPage, store.DimExitPage, store.DimHostname, store.DimReferrer, store.DimChannel,
		store.DimUTMSource, store.DimUTMMedium, store.DimUTMCampaign, store.DimUTMTerm, store.DimUTMContent,
		store.DimCountry, store.DimRegion, store.DimCity, store.DimDevice, store.DimBrowser, store.DimOS,
		store.DimEventName, store.PropDimension("plan"), store.PropDimension("file"), store.PropDimension("missing"),
	}
}

// VisitorsTolerance is how far a store that counts visitors approximately
// (Check's approx) may be from the reference: 2% of the visitors, rounded up.
// ClickHouse's uniq and uniqCombined are within it, and so is a visit's visitor counted also
// under the value it had before its rows merged.
const VisitorsTolerance = 0.02

// tolerate sets *want to got when approx and got is within
// VisitorsTolerance of *want, so the rest compares exactly.
func tolerate(want *int64, got int64, approx bool) {
	if approx && math.Abs(float64(got-*want)) <= math.Ceil(VisitorsTolerance*float64(*want)) {
		*want = got
	}
}

// Check runs the query matrix against q and compares every answer with the
// reference, and the unfiltered all-time overview with the generator's truth.
// With approx, visitors may be off by VisitorsTolerance (and breakdown
// rows ordered by the store's visitors).
func Check(t *testing.T, q store.Querier, opts Options, ds *Dataset, approx bool) {
	t.Helper()
	ctx := context.Background()
	ref := NewReference(ds.Events)
	for _, site := range opts.Sites {
		loc, err := time.LoadLocation(site.Timezone)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(site.ID, func(t *testing.T) {
			spans := Spans(opts, loc)
			t.Run("truth", func(t *testing.T) {
				got, err := q.Overview(ctx, allTime(opts, site.ID))
				if err != nil {
					t.Fatal(err)
				}
				want := ds.Truth[site.ID].Overview()
				tolerate(&want.Visitors, got.Visitors, approx)
				if got != want {
					t.Fatalf("all-time overview\n got %+v\nwant %+v (generator's truth)", got, want)
				}
			})
			for _, span := range spans {
				for _, fs := range FilterSets() {
					query := store.Query{SiteID: site.ID, From: span.From, To: span.To, Location: loc, Filters: fs.Filters}
					t.Run("overview/"+span.Name+"/"+fs.Name, func(t *testing.T) {
						got, err := q.Overview(ctx, query)
						if err != nil {
							t.Fatal(err)
						}
						want := ref.Overview(query)
						tolerate(&want.Visitors, got.Visitors, approx)
						if got != want {
							t.Fatalf("\n got %+v\nwant %+v", got, want)
						}
					})
					switch fs.Name {
					case "none", "DE and /pricing and signup", "page is_not /", "event_prop:plan is pro",
						"page /pricing and hostname example.com": // only positive page filters: no session check
					default:
						continue
					}
					for _, iv := range span.Intervals {
						t.Run(fmt.Sprintf("timeseries/%s/%s/%s", span.Name, iv, fs.Name), func(t *testing.T) {
							CheckTimeseries(t, q, ref, query, iv, approx)
						})
					}
				}
			}
			all := spans[0]
			t.Run("conversions", func(t *testing.T) {
				CheckConversions(t, q, ref, store.Query{SiteID: site.ID, From: all.From, To: all.To, Location: loc})
			})
			for _, dim := range BreakdownDims() {
				for _, fs := range FilterSetsNamed("none", "page is /pricing", "event_name is signup", "DE and /pricing and signup") {
					query := store.Query{SiteID: site.ID, From: all.From, To: all.To, Location: loc, Filters: fs.Filters}
					for _, page := range [][2]int{{10, 0}, {3, 3}, {1000, 0}, {5, 1000}} {
						if site.ID != opts.Sites[0].ID && (fs.Name != "none" || page[0] != 10) {
							continue
						}
						t.Run(fmt.Sprintf("breakdown/%s/%s/%d+%d", dim, fs.Name, page[1], page[0]), func(t *testing.T) {
							got, err := q.Breakdown(ctx, query, dim, page[0], page[1])
							if err != nil {
								t.Fatal(err)
							}
							want := ref.Breakdown(query, dim, page[0], page[1])
							if approx {
								want = approxBreakdown(got, want, ref.Breakdown(query, dim, 1<<20, 0))
							}
							if !reflect.DeepEqual(got, want) {
								t.Fatalf("\n got %+v\nwant %+v", got, want)
							}
						})
					}
				}
			}
		})
	}
}

// approxBreakdown returns the page the store should have answered when
// its visitors are approximate: the reference rows of got's values (from
// all, every row of the reference), each with got's visitors where they are
// within VisitorsTolerance, in the order of got's visitors. It returns want
// when got has a value the page cannot have or is not in that order.
func approxBreakdown(got, want, all store.Breakdown) store.Breakdown {
	if len(got.Rows) != len(want.Rows) {
		return want
	}
	out := store.Breakdown{Rows: []store.Row{}, Total: want.Total}
	for i, g := range got.Rows {
		j := slices.IndexFunc(all.Rows, func(r store.Row) bool { return r.Value == g.Value })
		if j < 0 || i > 0 && (got.Rows[i-1].Visitors < g.Visitors ||
			got.Rows[i-1].Visitors == g.Visitors && got.Rows[i-1].Value > g.Value) {
			return want
		}
		r := all.Rows[j]
		tolerate(&r.Visitors, g.Visitors, true)
		out.Rows = append(out.Rows, r)
	}
	return out
}

// CheckTimeseries compares one time series with the reference: every
// bucket the reference has must be in the series with equal numbers (with
// approx, visitors within VisitorsTolerance), every other bucket must be
// empty, and bucket starts must be increasing.
func CheckTimeseries(t *testing.T, q store.Querier, ref *Reference, query store.Query, iv store.Interval, approx bool) {
	t.Helper()
	got, err := q.Timeseries(context.Background(), query, iv)
	if err != nil {
		t.Fatal(err)
	}
	want := ref.Timeseries(query, iv)
	seen := 0
	for i, p := range got {
		if i > 0 && !got[i-1].Time.Before(p.Time) {
			t.Fatalf("bucket %d starts at %s, not after %s", i, p.Time, got[i-1].Time)
		}
		if p.Time.Location() != query.Location && query.Location != time.UTC {
			t.Fatalf("bucket %d is in %s, want %s", i, p.Time.Location(), query.Location)
		}
		w, ok := want[p.Time.Unix()]
		if !ok {
			if (p != store.Point{Time: p.Time}) {
				t.Fatalf("bucket %s: got %+v, want an empty bucket", p.Time, p)
			}
			continue
		}
		seen++
		tolerate(&w.Visitors, p.Visitors, approx)
		if !w.Time.Equal(p.Time) || w.Visitors != p.Visitors || w.Visits != p.Visits || w.Pageviews != p.Pageviews ||
			w.Events != p.Events || w.BounceRate != p.BounceRate || w.VisitDuration != p.VisitDuration {
			t.Fatalf("bucket %s:\n got %+v\nwant %+v", p.Time, p, w)
		}
	}
	if seen != len(want) {
		for k, w := range want {
			found := false
			for _, p := range got {
				found = found || p.Time.Unix() == k
			}
			if !found {
				t.Fatalf("the series lacks the bucket %s (%+v)", w.Time, w)
			}
		}
	}
}
