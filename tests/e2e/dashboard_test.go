package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestDashboard signs in, creates a site and follows hits live in the
// browser, with push and with SSE blocked. Screenshots of the overview and
// the live view go to E2E_SCREENSHOTS (default: a temporary directory; set
// it to docs/screenshots to refresh the committed ones).
func TestDashboard(t *testing.T) {
	browser := chromium(t)
	// Pins on the globe need locations: the binary embeds the country
	// database only when scripts/geo.sh fetched it before the build.
	if _, err := os.Stat(filepath.Join(testutil.ModuleRoot(), "internal", "enrich", "geo", "data", "country.mmdb")); err != nil {
		t.Fatalf("the embedded country database is missing (run scripts/geo.sh; scripts/test.sh does): %v", err)
	}
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)

	// The script sends hits from many countries through X-Forwarded-For.
	admin := app.SuperuserToken(t)
	app.Call(t, "PATCH", "/api/settings", admin, map[string]any{
		"trustedProxy": map[string]any{"headers": []string{"X-Forwarded-For"}, "useLeftmostIP": true},
	}, nil, http.StatusOK)

	const password = "user-password-123"
	user := testutil.Unique("user") + "@example.com"
	other := testutil.Unique("other") + "@example.com"
	app.CreateUser(t, user, password)
	app.CreateUser(t, other, password)

	shots := os.Getenv("E2E_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	runScript(t, "dashboard.mjs", 3*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"USER_EMAIL="+user,
		"USER_PASSWORD="+password,
		"OTHER_EMAIL="+other,
		"OTHER_PASSWORD="+password,
		"SCREENSHOTS="+shots,
	)
}

// TestDashboardInHostApp runs the dashboard where a host app puts it
// (examples/existing-app, /analytics/) in the browser.
func TestDashboardInHostApp(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{Package: "./examples/existing-app"})
	requireRoute(t, app, "/analytics/", `<base href="/analytics/">`)
	const password = "user-password-123"
	user := testutil.Unique("user") + "@example.com"
	app.CreateUser(t, user, password)
	runScript(t, "hostapp.mjs", time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"USER_EMAIL="+user,
		"USER_PASSWORD="+password,
	)
}

// TestDashboardProperties breaks a custom event down by a property in the
// browser and filters the view by a value (props.mjs).
func TestDashboardProperties(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)

	owner := newSiteOwner(t, app, "Props", "UTC", "shop.pocketlytics.test")

	runScript(t, "props.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"USER_EMAIL="+owner.Email,
		"USER_PASSWORD="+owner.Password,
		"SITE_ID="+owner.SiteID,
	)
}

// TestLiveConversions sends a goal-converting hit through /api/collect and
// sees the toast and the goal's count for today go up in the live view
// (liveconversions.mjs).
func TestLiveConversions(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)
	app.Call(t, "PATCH", "/api/settings", app.SuperuserToken(t), map[string]any{
		"trustedProxy": map[string]any{"headers": []string{"X-Forwarded-For"}, "useLeftmostIP": true},
	}, nil, http.StatusOK)

	owner := newSiteOwner(t, app, "Shop", "Europe/Berlin", "shop.pocketlytics.test")
	app.Call(t, "POST", "/api/collections/goals/records", owner.Token, map[string]any{
		"site": owner.SiteID, "name": "Signup", "event": "signup", "props": map[string]string{"plan": "pro"},
	}, nil, http.StatusOK)

	runScript(t, "liveconversions.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"USER_EMAIL="+owner.Email,
		"USER_PASSWORD="+owner.Password,
		"SITE_ID="+owner.SiteID,
	)
}
