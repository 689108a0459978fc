package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestReportSettings chooses a weekly report and sets a traffic alert in
// the site settings (see reports.mjs), then reads what was saved over the
// REST API.
func TestReportSettings(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)

	owner := newSiteOwner(t, app, "E2E reports shop", "UTC", "reports.pocketlytics.test")

	runScript(t, "reports.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"SITE_ID="+owner.SiteID,
		"OWNER_EMAIL="+owner.Email,
		"OWNER_PASSWORD="+owner.Password,
	)

	var alerts struct {
		Items []struct {
			Threshold int    `json:"threshold"`
			Email     bool   `json:"email"`
			Webhook   string `json:"webhook"`
		} `json:"items"`
	}
	app.Call(t, "GET", "/api/collections/pocketlytics_alerts/records", owner.Token, nil, &alerts, http.StatusOK)
	if len(alerts.Items) != 1 || alerts.Items[0].Threshold != 3 || !alerts.Items[0].Email || alerts.Items[0].Webhook != "https://hooks.example.com/pl" {
		t.Fatalf("alerts saved: %+v", alerts.Items)
	}
	var reports struct {
		TotalItems int `json:"totalItems"`
	}
	app.Call(t, "GET", "/api/collections/pocketlytics_reports/records", owner.Token, nil, &reports, http.StatusOK)
	if reports.TotalItems != 0 {
		t.Fatalf("%d reports after turning the report off", reports.TotalItems)
	}
}
