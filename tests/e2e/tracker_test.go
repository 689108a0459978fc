package e2e

import (
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestTracker loads t.js from the app into pages of another origin and
// checks every kind of hit on the wire and the app's 202 for each.
func TestTracker(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{"TRACK_LOCALHOST=true"}})
	requireRoute(t, app, "/t.js", "/api/collect")

	const host = "shop.pocketlytics.test"
	siteID := createSite(t, app, host, "localhost")
	rec := startRecorder(t, app.URL)
	pages := startPageServer(t, rec.URL, siteID)

	runScript(t, "tracker.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+rec.URL,
		"PAGE_URL=http://"+host+":"+pages.port,
		"LOCAL_URL=http://localhost:"+pages.port,
		"SITE_ID="+siteID,
	)
}

// createSite creates a site for the given domains, owned by a new user.
func createSite(t *testing.T, app *testutil.App, domains ...string) string {
	t.Helper()
	_, token := app.CreateUser(t, testutil.Unique("owner")+"@example.com", "owner-password-123")
	var site struct {
		ID string `json:"id"`
	}
	app.Call(t, "POST", "/api/collections/sites/records", token, map[string]any{
		"name": "E2E shop", "domains": domains, "timezone": "UTC",
	}, &site, 200)
	return site.ID
}
