package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestTracker loads t.js from the app into pages of another origin, checks
// every kind of hit on the wire and the app's answer to each, and then finds
// them in the analytics API.
func TestTracker(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{"TRACK_LOCALHOST=true"}})
	requireRoute(t, app, "/t.js", "/api/collect")

	const host = "shop.pocketlytics.test"
	owner := newSiteOwner(t, app, "E2E shop", "UTC", host, "localhost")
	siteID, token := owner.SiteID, owner.Token
	rec := startRecorder(t, app.URL)
	pages := startPageServer(t, rec.URL, siteID)

	runScript(t, "tracker.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+rec.URL,
		"PAGE_URL=http://"+host+":"+pages.port,
		"LOCAL_URL=http://localhost:"+pages.port,
		"SITE_ID="+siteID,
	)

	// What the browser sent is stored: the analytics API answers with it
	// once the flusher has written the batch.
	var ov struct {
		Current struct{ Pageviews, Events int } `json:"current"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		app.Call(t, "GET", "/api/analytics/sites/"+siteID+"/overview?period=today", token, nil, &ov, http.StatusOK)
		if ov.Current.Pageviews == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if ov.Current.Pageviews != 4 || ov.Current.Events != 1 {
		t.Fatalf("stored: %d pageviews and %d events, want 4 and 1", ov.Current.Pageviews, ov.Current.Events)
	}
	for dim, want := range map[string]string{"event_name": "Signup", "utm_source": "newsletter", "page": "/shop/cart", "hostname": "localhost"} {
		var b struct {
			Items []struct{ Value string } `json:"items"`
		}
		app.Call(t, "GET", "/api/analytics/sites/"+siteID+"/breakdown/"+dim+"?period=today", token, nil, &b, http.StatusOK)
		found := false
		for _, it := range b.Items {
			found = found || it.Value == want
		}
		if !found {
			t.Errorf("breakdown by %s: %+v, want a row %q", dim, b.Items, want)
		}
	}
}

// siteOwner is a new user who owns a new site, as a scenario signs in.
type siteOwner struct {
	Email, Password, Token, SiteID string
}

// newSiteOwner creates a user and a site of theirs for the domains.
func newSiteOwner(t *testing.T, app *testutil.App, name, timezone string, domains ...string) siteOwner {
	t.Helper()
	o := siteOwner{Email: testutil.Unique("owner") + "@example.com", Password: "owner-password-123"}
	_, o.Token = app.CreateUser(t, o.Email, o.Password)
	var site struct {
		ID string `json:"id"`
	}
	app.Call(t, "POST", "/api/collections/sites/records", o.Token, map[string]any{
		"name": name, "domains": domains, "timezone": timezone,
	}, &site, http.StatusOK)
	o.SiteID = site.ID
	return o
}

// TestTrackerAutoEvents runs the opt-in auto-tracked events and the
// engagement in a browser (autotrack.mjs), then finds them in the analytics
// API: the events with their url and path props, the hash route as a page,
// and the page's time on page and scroll depth.
func TestTrackerAutoEvents(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{"TRACK_LOCALHOST=true"}})
	requireRoute(t, app, "/t.js", "/api/collect")

	const host = "docs.pocketlytics.test"
	owner := newSiteOwner(t, app, "E2E shop", "UTC", host)
	siteID, token := owner.SiteID, owner.Token
	rec := startRecorder(t, app.URL)
	pages := startPageServer(t, rec.URL, siteID)
	page := "http://" + host + ":" + pages.port

	runScript(t, "autotrack.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+rec.URL,
		"PAGE_URL="+page,
		"SITE_ID="+siteID,
	)

	type item struct {
		Value       string
		Events      int
		TimeOnPage  *int
		ScrollDepth *int
	}
	breakdown := func(dim string) map[string]item {
		var b struct{ Items []item }
		app.Call(t, "GET", "/api/analytics/sites/"+siteID+"/breakdown/"+dim+"?period=today", token, nil, &b, http.StatusOK)
		out := map[string]item{}
		for _, it := range b.Items {
			out[it.Value] = it
		}
		return out
	}
	// The flusher writes in batches: wait for the last hit (the 404).
	deadline := time.Now().Add(15 * time.Second)
	for breakdown("event_name")["404"].Events == 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	names := breakdown("event_name")
	for name, n := range map[string]int{"Outbound Link: Click": 3, "File Download": 1, "404": 1} {
		if names[name].Events != n {
			t.Errorf("event %q: %d stored, want %d (%+v)", name, names[name].Events, n, names)
		}
	}
	urls := breakdown("event_prop:url")
	for _, u := range []string{"http://elsewhere.test:" + pages.port + "/landing", page + "/files/report.pdf"} {
		if _, ok := urls[u]; !ok {
			t.Errorf("event_prop:url has no row %q: %+v", u, urls)
		}
	}
	if _, ok := breakdown("event_prop:path")["/gone"]; !ok {
		t.Error("event_prop:path has no row /gone")
	}
	pagesByPath := breakdown("page")
	docs, ok := pagesByPath["/docs/"]
	if !ok || docs.TimeOnPage == nil || docs.ScrollDepth == nil {
		t.Fatalf("page /docs/ without engagement: %+v", pagesByPath)
	}
	if *docs.TimeOnPage < 1 || *docs.ScrollDepth != 100 {
		t.Errorf("/docs/: time on page %d s, scroll depth %d%%; want at least 1 s and 100%%", *docs.TimeOnPage, *docs.ScrollDepth)
	}
	if _, ok := pagesByPath["/docs/#/guide/install"]; !ok {
		t.Errorf("the hash route is not a page: %+v", pagesByPath)
	}
}
