package e2e

import (
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestDashboardFilters adds filters through the picker (is, is not,
// contains, several values), keeps them across a reload and history, saves
// and applies a segment and overlays the previous period (filters.mjs).
func TestDashboardFilters(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)

	owner := newSiteOwner(t, app, "Filters", "UTC", "shop.pocketlytics.test")

	runScript(t, "filters.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"USER_EMAIL="+owner.Email,
		"USER_PASSWORD="+owner.Password,
		"SITE_ID="+owner.SiteID,
	)
}
