package hooks_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// TestConversions: goals and funnels are managed through REST under the
// site's rules, refused with a 400 when malformed, and the analytics
// routes answer the goal breakdown, goal filter and funnels as the
// reference does, on both stores.
func TestConversions(t *testing.T) {
	for _, kind := range []string{"sqlite", "clickhouse"} {
		t.Run(kind, func(t *testing.T) { testConversions(t, newAnalyticsFixture(t, kind)) })
	}
}

func testConversions(t *testing.T, fx *analyticsFixture) {
	owner := map[string]string{"Authorization": token(t, ownerID)}
	member := map[string]string{"Authorization": token(t, memberID)}
	stranger := map[string]string{"Authorization": token(t, strangerID)}
	const period = "period=custom&from=2024-01-01&to=2024-12-31"
	goals := []store.Goal{{Name: "Signup", Event: "signup"}, {Name: "Pro", Event: "signup", Props: map[string]string{"plan": "pro"}}, {Name: "Blog", Page: "/blog/*"}}
	steps := []store.Goal{{Page: "/*"}, {Event: "signup"}}

	app := func(t testing.TB) *tests.TestApp {
		app := fx.app(t, 0)
		if err := hooks.RegisterConversions(app); err != nil {
			t.Fatal(err)
		}
		return app
	}
	// seeded adds the goals and a funnel as the owner would.
	seeded := func(t testing.TB) *tests.TestApp {
		a := app(t)
		gc, _ := a.FindCollectionByNameOrId(migrations.GoalsCollectionId)
		for _, g := range goals {
			r := core.NewRecord(gc)
			r.Load(map[string]any{"site": berlinSiteID, "name": g.Name, "event": g.Event, "page": g.Page, "props": g.Props})
			if err := a.Save(r); err != nil {
				t.Fatal(err)
			}
		}
		fc, _ := a.FindCollectionByNameOrId(migrations.FunnelsCollectionId)
		r := core.NewRecord(fc)
		r.Id = "funnel000000001"
		r.Load(map[string]any{"site": berlinSiteID, "name": "Signup funnel", "steps": steps})
		if err := a.Save(r); err != nil {
			t.Fatal(err)
		}
		return a
	}
	query := func(t testing.TB, filters ...store.Filter) store.Query {
		p := params(t, berlinSiteID, apiURL(berlinSiteID, "overview", period))
		p.Query.Goals, p.Query.Filters = goals, filters
		return p.Query
	}

	scenarios := []tests.ApiScenario{
		{
			Name: "owner creates a goal", Method: http.MethodPost, URL: "/api/collections/goals/records", Headers: owner,
			Body:           strings.NewReader(`{"site":"` + berlinSiteID + `","name":"Pricing","page":"/pricing*"}`),
			ExpectedStatus: 200, ExpectedContent: []string{`"page":"/pricing*"`}, TestAppFactory: app,
		},
		{
			Name: "a member may not create a goal", Method: http.MethodPost, URL: "/api/collections/goals/records", Headers: member,
			Body:           strings.NewReader(`{"site":"` + berlinSiteID + `","name":"Pricing","page":"/pricing"}`),
			ExpectedStatus: 400, ExpectedContent: []string{`"status":400`}, TestAppFactory: app,
		},
		{
			Name: "a goal with both event and page", Method: http.MethodPost, URL: "/api/collections/goals/records", Headers: owner,
			Body:           strings.NewReader(`{"site":"` + berlinSiteID + `","name":"X","page":"/","event":"signup"}`),
			ExpectedStatus: 400, ExpectedContent: []string{`A goal needs either an event name or a page pattern.`}, TestAppFactory: app,
		},
		{
			Name: "a funnel of one step", Method: http.MethodPost, URL: "/api/collections/funnels/records", Headers: owner,
			Body:           strings.NewReader(`{"site":"` + berlinSiteID + `","name":"F","steps":[{"page":"/"}]}`),
			ExpectedStatus: 400, ExpectedContent: []string{`A funnel has 2 to 8 steps.`}, TestAppFactory: app,
		},
		{
			Name: "a funnel step with an unknown field", Method: http.MethodPost, URL: "/api/collections/funnels/records", Headers: owner,
			Body:           strings.NewReader(`{"site":"` + berlinSiteID + `","name":"F","steps":[{"page":"/"},{"path":"/x"}]}`),
			ExpectedStatus: 400, ExpectedContent: []string{`Steps must be a list`}, TestAppFactory: app,
		},
		{
			Name: "members list the goals", Method: http.MethodGet, URL: "/api/collections/goals/records", Headers: member,
			ExpectedStatus: 200, ExpectedContent: []string{`"totalItems":3`}, TestAppFactory: seeded,
		},
		{
			Name: "strangers see no goals", Method: http.MethodGet, URL: "/api/collections/goals/records", Headers: stranger,
			ExpectedStatus: 200, ExpectedContent: []string{`"totalItems":0`}, TestAppFactory: seeded,
		},
		{
			Name: "goal breakdown", Method: http.MethodGet, URL: apiURL(berlinSiteID, "breakdown/goal", period), Headers: member,
			ExpectedStatus: 200, ExpectedContent: []string{`"conversionRate"`}, TestAppFactory: seeded,
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				var got struct{ Items []store.Row }
				decode(t, res, &got)
				want := fx.ref.Breakdown(query(t), store.DimGoal, 10, 0)
				if len(want.Rows) != 3 || want.Rows[0].Revenue == nil && want.Rows[1].Revenue == nil {
					t.Fatalf("the reference has %d goal rows, want 3 with revenue: a weak test", len(want.Rows))
				}
				if !reflect.DeepEqual(got.Items, want.Rows) {
					t.Fatalf("\n got %+v\nwant %+v", got.Items, want.Rows)
				}
			},
		},
		{
			Name: "overview under a goal filter", Method: http.MethodGet, Headers: member, TestAppFactory: seeded,
			URL:            apiURL(berlinSiteID, "overview", period+"&filters=goal%3D%3DPro"),
			ExpectedStatus: 200, ExpectedContent: []string{`"current"`},
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				var got struct{ Current store.Overview }
				decode(t, res, &got)
				want := fx.ref.Overview(query(t, store.Filter{Dimension: store.DimGoal, Op: store.OpIs, Values: []string{"Pro"}}))
				if want.Visits == 0 || got.Current != want {
					t.Fatalf("\n got %+v\nwant %+v (not empty)", got.Current, want)
				}
			},
		},
		{
			Name: "a goal filter on an unknown goal", Method: http.MethodGet, Headers: member, TestAppFactory: seeded,
			URL:            apiURL(berlinSiteID, "overview", period+"&filters=goal%3D%3DNope"),
			ExpectedStatus: 400, ExpectedContent: []string{`The site has no goal \"Nope\".`},
		},
		{
			Name: "funnel", Method: http.MethodGet, URL: apiURL(berlinSiteID, "funnels/funnel000000001", period), Headers: member,
			ExpectedStatus: 200, ExpectedContent: []string{`"name":"Signup funnel"`}, TestAppFactory: seeded,
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				var got struct{ Steps []store.FunnelStep }
				decode(t, res, &got)
				want := fx.ref.Funnel(query(t), steps)
				if want[1].Visitors == 0 || !reflect.DeepEqual(got.Steps, want) {
					t.Fatalf("\n got %+v\nwant %+v (a second step reached)", got.Steps, want)
				}
			},
		},
		{
			Name: "funnel for a stranger", Method: http.MethodGet, URL: apiURL(berlinSiteID, "funnels/funnel000000001", period), Headers: stranger,
			ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}, TestAppFactory: seeded,
		},
		{
			Name: "funnel of another site", Method: http.MethodGet, URL: apiURL(subsSiteID, "funnels/funnel000000001", period), Headers: owner,
			ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}, TestAppFactory: seeded,
		},
	}
	for _, s := range scenarios {
		s.Test(t)
	}
}

// TestCollectRevenue: a custom event's revenue travels through the queue
// exactly; a bad currency is a 400.
func TestCollectRevenue(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	defer f.app.Cleanup()
	mux := serveMux(t, f.app)
	body := `{"site":"` + siteID + `","type":"event","url":"https://example.com/buy","name":"Purchase","revenue":{"amount":49.99,"currency":"eur"}}`
	if rec := post(mux, body, chromeUA); rec.Code != http.StatusAccepted {
		t.Fatalf("got %d %s, want 202", rec.Code, rec.Body)
	}
	bad := strings.Replace(body, `"eur"`, `"EURO"`, 1)
	if rec := post(mux, bad, chromeUA); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "ISO 4217") {
		t.Fatalf("bad currency: got %d %s, want 400 naming ISO 4217", rec.Code, rec.Body)
	}
	evs := f.events(t)
	if len(evs) != 1 || evs[0].RevenueAmount != 49_990_000 || evs[0].RevenueCurrency != "EUR" {
		t.Fatalf("got %+v, want one event with 49.99 EUR", evs)
	}
}

// TestFunnelsRoute: the funnels route lists a site's funnels to whoever may
// read its statistics, a share link included, and to no one else; a share
// reads its own site's funnels only, until it is deleted.
func TestFunnelsRoute(t *testing.T) {
	_, app, srv := accessServer(t)
	if err := hooks.RegisterConversions(app); err != nil {
		t.Fatal(err)
	}
	funnels, _ := app.FindCollectionByNameOrId(migrations.FunnelsCollectionId)
	for _, f := range []struct{ site, name string }{{berlinSiteID, "Berlin signup"}, {siteID, "Other checkout"}} {
		r := core.NewRecord(funnels)
		r.Load(map[string]any{"site": f.site, "name": f.name, "steps": []store.Goal{{Page: "/"}, {Event: "signup"}}})
		if err := app.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	shares, _ := app.FindCollectionByNameOrId(access.SharesCollection)
	share := core.NewRecord(shares)
	share.Set("site", berlinSiteID)
	if err := app.Save(share); err != nil {
		t.Fatal(err)
	}
	q := "share=" + share.GetString("token")

	var list struct {
		Items []struct {
			ID, Name string
			Steps    []store.Goal
		}
	}
	res, body := call(t, srv, "GET", apiURL(berlinSiteID, "funnels", q), nil, nil)
	wantStatus(t, "share lists its site's funnels", res, body, 200)
	decode(t, res, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "Berlin signup" || len(list.Items[0].Steps) != 2 || list.Items[0].Steps[1].Event != "signup" {
		t.Fatalf("share's funnels: %s", body)
	}
	res, body = call(t, srv, "GET", apiURL(berlinSiteID, "funnels/"+list.Items[0].ID, q+"&period=7d"), nil, nil)
	wantStatus(t, "share reads the funnel", res, body, 200)

	for _, c := range []struct {
		name, site, query string
		headers           map[string]string
		status            int
	}{
		{"member", berlinSiteID, "", auth(memberID, t), 200},
		{"stranger", berlinSiteID, "", auth(strangerID, t), 404},
		{"signed out", berlinSiteID, "", nil, 404},
		{"share, another site", siteID, q, nil, 404},
		{"share, another site's funnel", siteID, q, auth(ownerID, t), 404},
	} {
		res, body := call(t, srv, "GET", apiURL(c.site, "funnels", c.query), c.headers, nil)
		wantStatus(t, c.name, res, body, c.status)
		if strings.Contains(body, "Other checkout") {
			t.Fatalf("%s: another site's funnel shows: %s", c.name, body)
		}
	}

	if err := app.Delete(share); err != nil {
		t.Fatal(err)
	}
	res, body = call(t, srv, "GET", apiURL(berlinSiteID, "funnels", q), nil, nil)
	wantStatus(t, "revoked share", res, body, 404)
}
