package e2e

import (
	"net/http"
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

	const password = "user-password-123"
	user := testutil.Unique("user") + "@example.com"
	_, token := app.CreateUser(t, user, password)
	var site struct {
		ID string `json:"id"`
	}
	app.Call(t, "POST", "/api/collections/sites/records", token, map[string]any{
		"name": "Filters", "domains": []string{"shop.pocketlytics.test"}, "timezone": "UTC",
	}, &site, http.StatusOK)

	runScript(t, "filters.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"USER_EMAIL="+user,
		"USER_PASSWORD="+password,
		"SITE_ID="+site.ID,
	)
}
