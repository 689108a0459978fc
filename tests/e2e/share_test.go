package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestShareLink opens a share link signed out in Chromium (overview with
// the engagement columns and the funnel chart, and live), revokes it while
// open, then checks a password link and the public switch (see share.mjs).
func TestShareLink(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)
	admin := app.SuperuserToken(t)
	// Each hit of the script comes from its own address.
	app.Call(t, "PATCH", "/api/settings", admin, map[string]any{
		"trustedProxy": map[string]any{"headers": []string{"X-Forwarded-For"}, "useLeftmostIP": true},
	}, nil, http.StatusOK)

	owner := newSiteOwner(t, app, "E2E shared shop", "UTC", "shop.pocketlytics.test")

	runScript(t, "share.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"SITE_ID="+owner.SiteID,
		"USER_EMAIL="+owner.Email,
		"USER_PASSWORD="+owner.Password,
	)
}
