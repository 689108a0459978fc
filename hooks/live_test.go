package hooks_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// liveApp returns a test app with the live layer, the polling route and two
// live visitors on livetest.Site.
func liveApp(t testing.TB) *tests.TestApp {
	app := livetest.NewApp(t)
	live, err := realtime.Register(app, realtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := hooks.RegisterLive(app, hooks.LiveConfig{Live: live}); err != nil {
		t.Fatal(err)
	}
	a := livetest.Hit(livetest.Site, 1, event.Pageview, "/")
	a.Time = a.Time.Add(-time.Second)
	b := livetest.Hit(livetest.Site, 2, event.Pageview, "/docs")
	b.ReferrerHost = "duckduckgo.com"
	live.Publish(a)
	live.Publish(b)
	// Publish hands over asynchronously: wait until both are applied.
	deadline := time.Now().Add(livetest.Wait)
	for {
		st, err := live.Status(context.Background(), livetest.Site, time.UTC, 10)
		if err == nil && st.Count == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hits not applied: %+v, %v", st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return app
}

func TestLiveRoute(t *testing.T) {
	url := "/api/analytics/sites/" + livetest.Site + "/live"
	token := func(collection, email string) map[string]string {
		app := livetest.NewApp(t) // same test data: tokens are valid in every test app
		return map[string]string{"Authorization": livetest.Token(t, app, collection, email)}
	}
	owner, member, stranger := token("users", livetest.Owner), token("users", livetest.Member), token("users", livetest.Stranger)
	superuser := token(core.CollectionNameSuperusers, "test@example.com")

	visible := []string{
		`"count":2`, `"push":true`, `"window":300`,
		`"visitor":"` + realtime.VisitorKey(livetest.Site, 2) + `"`, // newest arrival first
		`"entry":"/docs","referrer":"duckduckgo.com","country":"DE","region":"BE","city":"Berlin","lat":52.52,"lon":13.405,"device":"desktop","browser":"Firefox","os":"Linux","page":"/docs"`,
		`"pages":[{"value":"/","visitors":1},{"value":"/docs","visitors":1}]`,
		`"referrers":[{"value":"duckduckgo.com","visitors":1},{"value":"news.ycombinator.com","visitors":1}]`,
		`"online":{"start":"`, `"step":60,"counts":[`,
	}
	scenarios := []tests.ApiScenario{
		{Name: "owner", Headers: owner, ExpectedStatus: 200, ExpectedContent: visible},
		{Name: "member", Headers: member, ExpectedStatus: 200, ExpectedContent: visible},
		{Name: "superuser", Headers: superuser, ExpectedStatus: 200, ExpectedContent: visible},
		{Name: "stranger", Headers: stranger, ExpectedStatus: 404, ExpectedContent: []string{`"data":{}`}, NotExpectedContent: []string{`"count"`}},
		{Name: "guest", ExpectedStatus: 404, ExpectedContent: []string{`"data":{}`}},
		{Name: "unknown site", URL: "/api/analytics/sites/nosuchsite0000/live", Headers: owner, ExpectedStatus: 404, ExpectedContent: []string{`"data":{}`}},
		// Public opens the statistics (not the record): anyone may read them.
		{Name: "public site as guest", URL: "/api/analytics/sites/" + livetest.Public + "/live", ExpectedStatus: 200,
			ExpectedContent: []string{`"count":0`, `"arrivals":[]`, `"pages":[]`, `"referrers":[]`}},
		{Name: "public site as a non-member", URL: "/api/analytics/sites/" + livetest.Public + "/live", Headers: owner, ExpectedStatus: 200,
			ExpectedContent: []string{`"count":0`}},
		{Name: "private site of another user", URL: "/api/analytics/sites/" + livetest.Other + "/live", Headers: owner, ExpectedStatus: 404,
			ExpectedContent: []string{`"data":{}`}},
		{Name: "arrivals bounded", URL: url + "?arrivals=1", Headers: owner, ExpectedStatus: 200,
			ExpectedContent:    []string{`"visitor":"` + realtime.VisitorKey(livetest.Site, 2) + `"`},
			NotExpectedContent: []string{`"visitor":"` + realtime.VisitorKey(livetest.Site, 1) + `"`}},
		{Name: "bad arrivals", URL: url + "?arrivals=x", Headers: owner, ExpectedStatus: 400, ExpectedContent: []string{`"status":400`}},
		{Name: "too many arrivals", URL: url + "?arrivals=1000", Headers: owner, ExpectedStatus: 400, ExpectedContent: []string{`"status":400`}},
	}
	for _, s := range scenarios {
		s.Method = http.MethodGet
		if s.URL == "" {
			s.URL = url
		}
		s.TestAppFactory = func(t testing.TB) *tests.TestApp { return liveApp(t) }
		s.Test(t)
	}
}

func TestRegisterLiveNeedsLive(t *testing.T) {
	app := livetest.NewApp(t)
	if err := hooks.RegisterLive(app, hooks.LiveConfig{}); err == nil {
		t.Fatal("RegisterLive without a Live: no error")
	}
}
