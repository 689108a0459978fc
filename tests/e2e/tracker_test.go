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
	siteID, token := createSite(t, app, host, "localhost")
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

// createSite creates a site for the given domains, owned by a new user,
// and returns its id and the owner's token.
func createSite(t *testing.T, app *testutil.App, domains ...string) (id, token string) {
	t.Helper()
	_, token = app.CreateUser(t, testutil.Unique("owner")+"@example.com", "owner-password-123")
	var site struct {
		ID string `json:"id"`
	}
	app.Call(t, "POST", "/api/collections/sites/records", token, map[string]any{
		"name": "E2E shop", "domains": domains, "timezone": "UTC",
	}, &site, http.StatusOK)
	return site.ID, token
}
