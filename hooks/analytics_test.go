package hooks_test

import (
	"context"
	dbsql "database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/queryparams"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlitestore"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// berlinSiteID is a site in Europe/Berlin, owned by the fixture owner with
// the fixture member, added to each analytics test app. subsSiteID (public,
// UTC) comes from the shared template.
const berlinSiteID = "berlin000000001"

// analyticsNow is inside the generated data: Berlin's spring-forward day.
var analyticsNow = time.Date(2024, 3, 31, 14, 7, 0, 0, time.UTC)

// analyticsFixture is a store loaded with a generated dataset for the
// Berlin site and the public site, and the reference over the same events.
type analyticsFixture struct {
	store store.Store
	ref   *storetest.Reference
}

// newAnalyticsFixture opens a store of the given kind (sqlite, clickhouse)
// and loads it.
func newAnalyticsFixture(t *testing.T, kind string) *analyticsFixture {
	t.Helper()
	opts := storetest.DefaultOptions()
	opts.Sites = []storetest.Site{{ID: berlinSiteID, Timezone: "Europe/Berlin"}, {ID: subsSiteID, Timezone: "UTC"}}
	opts.Sessions = 1500
	ds := storetest.Generate(opts)
	var s store.Store
	var err error
	switch kind {
	case "sqlite":
		s, err = sqlitestore.Open(filepath.Join(t.TempDir(), "analytics.db"))
	case "clickhouse":
		s, err = chstore.Open(t.Context(), testutil.ClickHouseDSN(t), chstore.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for start := 0; start < len(ds.Events); start += 10000 {
		if err := s.Insert(t.Context(), "", ds.Events[start:min(start+10000, len(ds.Events))]); err != nil {
			t.Fatal(err)
		}
	}
	return &analyticsFixture{store: s, ref: storetest.NewReference(ds.Events)}
}

// app is a test app with the analytics routes on the fixture's store.
func (fx *analyticsFixture) app(t testing.TB, retentionDays int) *tests.TestApp {
	t.Helper()
	return fx.appWith(t, func(c *hooks.AnalyticsConfig) { c.RetentionDays = retentionDays })
}

// appWith is app with the configuration changed by set.
func (fx *analyticsFixture) appWith(t testing.TB, set func(*hooks.AnalyticsConfig)) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp(template(t))
	if err != nil {
		t.Fatal(err)
	}
	sites, err := app.FindCollectionByNameOrId("sites")
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(sites)
	r.Id = berlinSiteID
	r.Load(map[string]any{"name": "Berlin", "domains": []string{"example.de"}, "timezone": "Europe/Berlin",
		"owner": ownerID, "admins": []string{adminID}, "members": []string{memberID}})
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	cfg := hooks.AnalyticsConfig{
		Store: fx.store,
		Sites: sitecache.Register(app),
		Now:   func() time.Time { return analyticsNow },
	}
	set(&cfg)
	err = hooks.RegisterAnalytics(app, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func apiURL(site, path string, query string) string {
	u := "/api/analytics/sites/" + site + "/" + path
	if query != "" {
		u += "?" + query
	}
	return u
}

// params parses a scenario URL's query the way the route does.
func params(t testing.TB, site, rawURL string) queryparams.Params {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	loc := time.UTC
	if site == berlinSiteID {
		loc, _ = time.LoadLocation("Europe/Berlin")
	}
	p, err := queryparams.Parse(u.Query(), site, loc, analyticsNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func decode(t testing.TB, res *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// expectOverview compares the response with the reference's answers for
// the same parameters.
func (fx *analyticsFixture) expectOverview(site, rawURL string) func(testing.TB, *tests.TestApp, *http.Response) {
	return func(t testing.TB, _ *tests.TestApp, res *http.Response) {
		ref := fx.ref
		p := params(t, site, rawURL)
		var got struct {
			Range struct {
				Period   string    `json:"period"`
				From     time.Time `json:"from"`
				To       time.Time `json:"to"`
				Timezone string    `json:"timezone"`
			} `json:"range"`
			Current, Previous store.Overview
			PreviousRange     struct{ From, To time.Time }
		}
		decode(t, res, &got)
		if got.Range.Period != p.Period || !got.Range.From.Equal(p.From) || !got.Range.To.Equal(p.To) {
			t.Fatalf("range %+v, want %s %s..%s", got.Range, p.Period, p.From, p.To)
		}
		if !got.PreviousRange.From.Equal(p.PrevFrom) || !got.PreviousRange.To.Equal(p.PrevTo) {
			t.Fatalf("previous range %+v, want %s..%s", got.PreviousRange, p.PrevFrom, p.PrevTo)
		}
		if want := ref.Overview(p.Query); got.Current != want {
			t.Fatalf("current\n got %+v\nwant %+v", got.Current, want)
		}
		if want := ref.Overview(p.Previous()); got.Previous != want {
			t.Fatalf("previous\n got %+v\nwant %+v", got.Previous, want)
		}
	}
}

// expectTimeseries compares the points, and with compare=previous the
// comparison period's, with the reference.
func (fx *analyticsFixture) expectTimeseries(site, rawURL string, points int) func(testing.TB, *tests.TestApp, *http.Response) {
	return func(t testing.TB, _ *tests.TestApp, res *http.Response) {
		ref := fx.ref
		p := params(t, site, rawURL)
		var got struct {
			Range          struct{ Interval string }
			Points         []store.Point
			PreviousRange  *struct{ From, To time.Time }
			PreviousPoints []store.Point
		}
		decode(t, res, &got)
		if got.Range.Interval != string(p.Interval) || len(got.Points) != points {
			t.Fatalf("%s with %d points, want %s with %d", got.Range.Interval, len(got.Points), p.Interval, points)
		}
		samePoints(t, got.Points, ref.Timeseries(p.Query, p.Interval))
		if !strings.Contains(rawURL, "compare=previous") {
			if got.PreviousRange != nil || got.PreviousPoints != nil {
				t.Fatal("a previous period without compare=previous")
			}
			return
		}
		if got.PreviousRange == nil || !got.PreviousRange.From.Equal(p.PrevFrom) || !got.PreviousRange.To.Equal(p.PrevTo) {
			t.Fatalf("previous range %+v, want %s..%s", got.PreviousRange, p.PrevFrom, p.PrevTo)
		}
		want := ref.Timeseries(p.Previous(), p.Interval)
		if len(got.PreviousPoints) == 0 || len(want) == 0 {
			t.Fatalf("%d previous points, %d with data in the reference: a weak test", len(got.PreviousPoints), len(want))
		}
		samePoints(t, got.PreviousPoints, want)
	}
}

// samePoints checks a time series against the reference's non-empty buckets.
func samePoints(t testing.TB, got []store.Point, want map[int64]store.Point) {
	t.Helper()
	nonEmpty := 0
	for _, pt := range got {
		w, ok := want[pt.Time.Unix()]
		if !ok {
			w = store.Point{Time: pt.Time}
		} else {
			nonEmpty++
		}
		w.Time = pt.Time
		if pt != w {
			t.Fatalf("point %s\n got %+v\nwant %+v", pt.Time, pt, w)
		}
	}
	if nonEmpty != len(want) {
		t.Fatalf("%d buckets with data, want %d", nonEmpty, len(want))
	}
}

func (fx *analyticsFixture) expectBreakdown(site, rawURL string, dim store.Dimension) func(testing.TB, *tests.TestApp, *http.Response) {
	return func(t testing.TB, _ *tests.TestApp, res *http.Response) {
		ref := fx.ref
		p := params(t, site, rawURL)
		var got struct {
			Dimension                             store.Dimension
			Page, PerPage, TotalItems, TotalPages int
			Items                                 []store.Row
		}
		decode(t, res, &got)
		want := ref.Breakdown(p.Query, dim, p.Limit, p.Offset())
		if got.Dimension != dim || got.Page != p.Page || got.PerPage != p.Limit || got.TotalItems != want.Total ||
			got.TotalPages != (want.Total+p.Limit-1)/p.Limit {
			t.Fatalf("got %s page %d/%d of %d items per %d; want %s page %d of %d items per %d",
				got.Dimension, got.Page, got.TotalPages, got.TotalItems, got.PerPage, dim, p.Page, want.Total, p.Limit)
		}
		if len(want.Rows) == 0 {
			t.Fatalf("the reference has no rows: a weak test")
		}
		if !reflect.DeepEqual(got.Items, want.Rows) {
			t.Fatalf("\n got %+v\nwant %+v", got.Items, want.Rows)
		}
	}
}

func TestAnalyticsRoutes(t *testing.T) {
	for _, kind := range []string{"sqlite", "clickhouse"} {
		t.Run(kind, func(t *testing.T) { testAnalyticsRoutes(t, newAnalyticsFixture(t, kind)) })
	}
}

func testAnalyticsRoutes(t *testing.T, fx *analyticsFixture) {
	owner := map[string]string{"Authorization": token(t, ownerID)}
	member := map[string]string{"Authorization": token(t, memberID)}
	stranger := map[string]string{"Authorization": token(t, strangerID)}
	superuser := map[string]string{"Authorization": token(t, superuserID)}
	jsonFilters := url.QueryEscape(`[["country","is","DE|FR"],["page","contains","/blog"]]`)
	compactFilters := url.QueryEscape(`event_name==signup;device!=mobile`)
	ok := []string{`"range"`}
	bad := func(msg string) []string { return []string{`"status":400`, msg} }
	notFound := []string{`"status":404`, `"data":{}`}

	type check func(site, rawURL string) func(testing.TB, *tests.TestApp, *http.Response)
	overview := check(fx.expectOverview)
	series := func(n int) check {
		return func(site, rawURL string) func(testing.TB, *tests.TestApp, *http.Response) {
			return fx.expectTimeseries(site, rawURL, n)
		}
	}
	breakdown := func(dim store.Dimension) check {
		return func(site, rawURL string) func(testing.TB, *tests.TestApp, *http.Response) {
			return fx.expectBreakdown(site, rawURL, dim)
		}
	}
	type scenario struct {
		Name, URL                           string
		Headers                             map[string]string
		ExpectedStatus                      int
		ExpectedContent, NotExpectedContent []string
		After                               check // compares the response with the reference
		Retention                           int   // RETENTION_DAYS of the app
	}

	scenarios := []scenario{
		// Each period, as the owner.
		{Name: "overview default period", URL: apiURL(berlinSiteID, "overview", ""), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"period":"30d"`, `"timezone":"Europe/Berlin"`}, After: overview},
		{Name: "overview realtime", URL: apiURL(berlinSiteID, "overview", "period=realtime"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview today", URL: apiURL(berlinSiteID, "overview", "period=today"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"from":"2024-03-31T00:00:00+01:00"`, `"to":"2024-04-01T00:00:00+02:00"`}, After: overview},
		{Name: "overview yesterday", URL: apiURL(berlinSiteID, "overview", "period=yesterday"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview 24h", URL: apiURL(berlinSiteID, "overview", "period=24h"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview 7d", URL: apiURL(berlinSiteID, "overview", "period=7d"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview month", URL: apiURL(berlinSiteID, "overview", "period=month"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview last_month", URL: apiURL(berlinSiteID, "overview", "period=last_month"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview 12mo", URL: apiURL(berlinSiteID, "overview", "period=12mo"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview custom", URL: apiURL(berlinSiteID, "overview", "period=custom&from=2024-03-10&to=2024-03-20"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview JSON filters", URL: apiURL(berlinSiteID, "overview", "period=30d&filters="+jsonFilters), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},
		{Name: "overview compact filters", URL: apiURL(berlinSiteID, "overview", "filters="+compactFilters), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: overview},

		{Name: "timeseries today: 23 hours on the DST day", URL: apiURL(berlinSiteID, "timeseries", "period=today"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"interval":"hour"`, `"time":"2024-03-31T03:00:00+02:00"`}, After: series(23)},
		{Name: "timeseries realtime", URL: apiURL(berlinSiteID, "timeseries", "period=realtime"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: series(30)},
		{Name: "timeseries 7d by hour", URL: apiURL(berlinSiteID, "timeseries", "period=7d&interval=hour"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: series(7*24 - 1)},
		{Name: "timeseries 30d filtered", URL: apiURL(berlinSiteID, "timeseries", "period=30d&filters="+jsonFilters), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: series(30)},
		{Name: "timeseries 12mo", URL: apiURL(berlinSiteID, "timeseries", "period=12mo"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"interval":"month"`}, After: series(12)},
		{Name: "timeseries 7d with the previous period", URL: apiURL(berlinSiteID, "timeseries", "period=7d&compare=previous&filters="+jsonFilters), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"previousRange"`}, After: series(7)},
		{Name: "timeseries today with the previous day so far", URL: apiURL(berlinSiteID, "timeseries", "period=today&compare=previous"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"previousPoints"`}, After: series(23)},

		{Name: "breakdown page with time on page and scroll depth", URL: apiURL(berlinSiteID, "breakdown/page", ""), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"timeOnPage":`, `"scrollDepth":`}, After: breakdown(store.DimPage)},
		{Name: "breakdown page filtered, engagement of the filtered visits", URL: apiURL(berlinSiteID, "breakdown/page", "period=month&filters="+jsonFilters), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"timeOnPage":`}, After: breakdown(store.DimPage)},
		{Name: "breakdown country, page 2 of 3 per page", URL: apiURL(berlinSiteID, "breakdown/country", "limit=3&page=2"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"page":2`, `"perPage":3`}, NotExpectedContent: []string{`"timeOnPage"`}, After: breakdown(store.DimCountry)},
		{Name: "breakdown entry_page filtered", URL: apiURL(berlinSiteID, "breakdown/entry_page", "period=month&filters="+compactFilters), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: breakdown(store.DimEntryPage)},
		{Name: "breakdown channel", URL: apiURL(berlinSiteID, "breakdown/channel", "period=7d"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: breakdown(store.DimChannel)},
		{Name: "breakdown event_name", URL: apiURL(berlinSiteID, "breakdown/event_name", ""), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: breakdown(store.DimEventName)},
		{Name: "breakdown event_prop:plan", URL: apiURL(berlinSiteID, "breakdown/event_prop:plan", "period=30d"), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: []string{`"dimension":"event_prop:plan"`}, After: breakdown(store.PropDimension("plan"))},
		{Name: "breakdown escaped event_prop", URL: apiURL(berlinSiteID, "breakdown/event_prop%3Afile", ""), Headers: owner,
			ExpectedStatus: 200, ExpectedContent: ok, After: breakdown(store.PropDimension("file"))},

		// Who may read.
		{Name: "member", URL: apiURL(berlinSiteID, "overview", ""), Headers: member, ExpectedStatus: 200, ExpectedContent: ok},
		{Name: "superuser", URL: apiURL(berlinSiteID, "breakdown/os", ""), Headers: superuser, ExpectedStatus: 200, ExpectedContent: ok},
		{Name: "stranger gets 404", URL: apiURL(berlinSiteID, "overview", ""), Headers: stranger, ExpectedStatus: 404, ExpectedContent: notFound,
			NotExpectedContent: []string{`"visitors"`}},
		{Name: "guest gets 404", URL: apiURL(berlinSiteID, "timeseries", ""), ExpectedStatus: 404, ExpectedContent: notFound},
		{Name: "stranger breakdown 404 before a bad dimension", URL: apiURL(berlinSiteID, "breakdown/colour", ""), Headers: stranger,
			ExpectedStatus: 404, ExpectedContent: notFound},
		{Name: "unknown site 404", URL: apiURL(noSiteID, "overview", ""), Headers: owner, ExpectedStatus: 404, ExpectedContent: notFound},
		{Name: "public site as guest", URL: apiURL(subsSiteID, "overview", "period=custom&from=2024-03-05&to=2024-04-12"),
			ExpectedStatus: 200, ExpectedContent: []string{`"timezone":"UTC"`}, After: overview},
		{Name: "public site breakdown as stranger", URL: apiURL(subsSiteID, "breakdown/referrer", "period=month"), Headers: stranger,
			ExpectedStatus: 200, ExpectedContent: ok, After: breakdown(store.DimReferrer)},

		// Bad input: 400 in PocketBase's shape.
		{Name: "unknown period", URL: apiURL(berlinSiteID, "overview", "period=week"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Unknown period \"week\"`)},
		{Name: "unknown compare", URL: apiURL(berlinSiteID, "timeseries", "compare=last_year"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Unknown compare`)},
		{Name: "compare in a CSV", URL: apiURL(berlinSiteID, "timeseries", "compare=previous&format=csv"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`has no compare`)},
		{Name: "unknown interval", URL: apiURL(berlinSiteID, "timeseries", "interval=week"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Unknown interval`)},
		{Name: "too fine an interval", URL: apiURL(berlinSiteID, "timeseries", "period=12mo&interval=minute"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`more than 2000 buckets`)},
		{Name: "unknown dimension", URL: apiURL(berlinSiteID, "breakdown/colour", ""), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Unknown dimension \"colour\"`)},
		{Name: "event_prop without key", URL: apiURL(berlinSiteID, "breakdown/event_prop", ""), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Unknown dimension`)},
		{Name: "unknown filter dimension", URL: apiURL(berlinSiteID, "overview", "filters="+url.QueryEscape(`[["colour","is","red"]]`)), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Unknown dimension`)},
		{Name: "unknown operator", URL: apiURL(berlinSiteID, "overview", "filters="+url.QueryEscape(`[["country","like","D%"]]`)), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Unknown filter operator`)},
		{Name: "malformed filters", URL: apiURL(berlinSiteID, "overview", "filters="+url.QueryEscape(`[["country"`)), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Filters: not a JSON array`)},
		{Name: "bad date", URL: apiURL(berlinSiteID, "overview", "period=custom&from=2024-02-30&to=2024-03-01"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`From: want a date`)},
		{Name: "from after to", URL: apiURL(berlinSiteID, "overview", "period=custom&from=2024-03-02&to=2024-03-01"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`is after to`)},
		{Name: "more than five years", URL: apiURL(berlinSiteID, "overview", "period=custom&from=2018-01-01&to=2024-03-01"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`at most 5 years`)},
		{Name: "limit too big", URL: apiURL(berlinSiteID, "breakdown/page", "limit=1001"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Limit: want a number from 1 to 1000`)},
		{Name: "page zero", URL: apiURL(berlinSiteID, "breakdown/page", "page=0"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`Page: want a number from 1`)},
		{Name: "beyond retention", URL: apiURL(berlinSiteID, "overview", "period=12mo"), Headers: owner, ExpectedStatus: 400, ExpectedContent: bad(`events are kept for 30 days`),
			Retention: 30},
		{Name: "within retention", URL: apiURL(berlinSiteID, "overview", "period=30d"), Headers: owner, ExpectedStatus: 200, ExpectedContent: ok,
			Retention: 30},
	}
	for _, sc := range scenarios {
		s := tests.ApiScenario{
			Name: sc.Name, Method: http.MethodGet, URL: sc.URL, Headers: sc.Headers, ExpectedStatus: sc.ExpectedStatus,
			ExpectedContent: sc.ExpectedContent, NotExpectedContent: sc.NotExpectedContent,
			TestAppFactory: func(t testing.TB) *tests.TestApp { return fx.app(t, sc.Retention) },
		}
		if sc.After != nil {
			site := strings.Split(strings.TrimPrefix(sc.URL, "/api/analytics/sites/"), "/")[0]
			s.AfterTestFunc = sc.After(site, sc.URL)
		}
		s.Test(t)
	}
}

func TestRegisterAnalyticsNeedsStoreAndSites(t *testing.T) {
	app, err := tests.NewTestApp(template(t))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "analytics.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := hooks.RegisterAnalytics(app, hooks.AnalyticsConfig{Sites: sitecache.Register(app)}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Fatalf("without a store: %v", err)
	}
	if err := hooks.RegisterAnalytics(app, hooks.AnalyticsConfig{Store: s}); err == nil || !strings.Contains(err.Error(), "site cache") {
		t.Fatalf("without the site cache: %v", err)
	}
}

// A forbidden site's 404 does the same work as an unknown id's, so that
// timing does not tell whether a site exists: the same database queries.
func TestNotFoundCostsTheSame(t *testing.T) {
	fx := newAnalyticsFixture(t, "sqlite")
	stranger := map[string]string{"Authorization": token(t, strangerID)}
	queries := map[string][]string{}
	for _, site := range []string{berlinSiteID, noSiteID} {
		var mu sync.Mutex
		var seen []string
		(&tests.ApiScenario{
			Name: site, Method: http.MethodGet, URL: apiURL(site, "overview", ""), Headers: stranger,
			ExpectedStatus: 404, ExpectedContent: []string{`"status":404`},
			TestAppFactory: func(t testing.TB) *tests.TestApp {
				app := fx.app(t, 0)
				for _, b := range []dbx.Builder{app.ConcurrentDB(), app.NonconcurrentDB()} {
					db := b.(*dbx.DB)
					db.QueryLogFunc = func(_ context.Context, _ time.Duration, sql string, _ *dbsql.Rows, _ error) {
						mu.Lock()
						seen = append(seen, sql)
						mu.Unlock()
					}
				}
				return app
			},
		}).Test(t)
		queries[site] = seen
	}
	if len(queries[berlinSiteID]) != len(queries[noSiteID]) {
		t.Fatalf("forbidden site: %d queries %q; unknown site: %d queries %q",
			len(queries[berlinSiteID]), queries[berlinSiteID], len(queries[noSiteID]), queries[noSiteID])
	}
}

// gate holds Overview queries until released, announcing each.
type gate struct {
	store.Querier
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Overview(ctx context.Context, q store.Query) (store.Overview, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Querier.Overview(context.WithoutCancel(ctx), q) // it outlived its deadline here
}

// The analytics routes bound what one client can ask: a query string's
// size, a rate per client, and the requests querying the store at once.
func TestAnalyticsLimits(t *testing.T) {
	fx := newAnalyticsFixture(t, "sqlite")
	g := &gate{Querier: fx.store, entered: make(chan struct{}, 8), release: make(chan struct{})}
	app := fx.appWith(t, func(c *hooks.AnalyticsConfig) {
		c.Store, c.RateLimit, c.MaxConcurrent, c.QueryTimeout = g, 1, 1, time.Second
	})
	srv := livetest.Serve(t, app)
	get := func(path, query, who string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+apiURL(berlinSiteID, path, query), nil)
		if who != "" {
			req.Header.Set("Authorization", token(t, who))
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}

	if status := get("timeseries", "filters="+strings.Repeat("a", hooks.DefaultMaxQueryString), ownerID); status != http.StatusRequestURITooLong {
		t.Fatalf("oversized query string: %d, want 414", status)
	}

	// One request holds the only turn: another client's waits, then 503.
	first := make(chan int, 1)
	go func() { first <- get("overview", "", ownerID) }()
	<-g.entered
	if status := get("timeseries", "", memberID); status != http.StatusServiceUnavailable {
		t.Fatalf("request without a turn: %d, want 503", status)
	}
	close(g.release)
	if status := <-first; status != http.StatusOK {
		t.Fatalf("request with the turn: %d, want 200", status)
	}

	// A burst of 2 per client (before the site is even looked up), then 429.
	for i, want := range []int{http.StatusNotFound, http.StatusNotFound, http.StatusTooManyRequests} {
		if status := get("timeseries", "", strangerID); status != want {
			t.Fatalf("stranger's request %d: %d, want %d", i+1, status, want)
		}
	}
	if status := get("timeseries", "", superuserID); status != http.StatusOK {
		t.Fatalf("superuser: %d", status)
	}
}
