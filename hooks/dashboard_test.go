package hooks_test

import (
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pocketlytics/pocketlytics/hooks"
	pbpublic "github.com/pocketlytics/pocketlytics/pb_public"
)

func TestDashboardRoute(t *testing.T) {
	entries, err := fs.ReadDir(pbpublic.FS(), "assets")
	if err != nil {
		t.Fatal(err)
	}
	var script, style string
	for _, e := range entries {
		switch {
		case strings.HasSuffix(e.Name(), ".js"):
			script = "/assets/" + e.Name()
		case strings.HasSuffix(e.Name(), ".css"):
			style = "/assets/" + e.Name()
		}
	}
	if script == "" || style == "" {
		t.Fatalf("assets/ lacks the app's script or stylesheet: %v", entries)
	}

	both := func(app core.App) error {
		if err := hooks.RegisterTracker(app); err != nil {
			return err
		}
		return hooks.RegisterDashboard(app, "/")
	}
	pageETag := fetchETag(t, "/", both)

	factory := func(t testing.TB) *tests.TestApp {
		app, err := tests.NewTestApp()
		if err != nil {
			t.Fatal(err)
		}
		if err := both(app); err != nil {
			t.Fatal(err)
		}
		return app
	}
	page := func(t testing.TB, _ *tests.TestApp, res *http.Response) {
		checkHeaders(t, res, map[string]string{
			"Content-Type":  "text/html; charset=utf-8",
			"Cache-Control": "no-cache",
		})
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	}

	scenarios := []tests.ApiScenario{
		{
			Name:            "root serves the page",
			Method:          http.MethodGet,
			URL:             "/",
			ExpectedStatus:  200,
			ExpectedContent: []string{`<div id="app">`, `<base href="/">`, `src="` + script[1:], `href="` + style[1:]},
			AfterTestFunc:   page,
		},
		{
			Name:            "index.html serves the page",
			Method:          http.MethodGet,
			URL:             "/index.html",
			ExpectedStatus:  200,
			ExpectedContent: []string{`<div id="app">`},
			AfterTestFunc:   page,
		},
		{
			Name:            "deep link falls back to the page",
			Method:          http.MethodGet,
			URL:             "/sites/abc123/live?period=7d",
			ExpectedStatus:  200,
			ExpectedContent: []string{`<div id="app">`},
			AfterTestFunc:   page,
		},
		{
			Name:           "page revalidates with its ETag",
			Method:         http.MethodGet,
			URL:            "/sites",
			Headers:        map[string]string{"If-None-Match": pageETag},
			ExpectedStatus: 304,
		},
		{
			Name:               "hashed script is immutable and gzipped",
			Method:             http.MethodGet,
			URL:                script,
			Headers:            map[string]string{"Accept-Encoding": "gzip"},
			ExpectedStatus:     200,
			NotExpectedContent: []string{"<html"},
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, map[string]string{
					"Content-Type":     "text/javascript; charset=utf-8",
					"Cache-Control":    "public, max-age=31536000, immutable",
					"Content-Encoding": "gzip",
				})
			},
		},
		{
			Name:               "hashed stylesheet",
			Method:             http.MethodGet,
			URL:                style,
			ExpectedStatus:     200,
			NotExpectedContent: []string{"<html"},
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, map[string]string{
					"Content-Type":  "text/css; charset=utf-8",
					"Cache-Control": "public, max-age=31536000, immutable",
				})
			},
		},
		{
			Name:            "favicon",
			Method:          http.MethodGet,
			URL:             "/favicon.svg",
			ExpectedStatus:  200,
			ExpectedContent: []string{"<svg"},
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, map[string]string{"Cache-Control": "public, max-age=3600"})
			},
		},
		{
			Name:               "missing asset is a 404, not the page",
			Method:             http.MethodGet,
			URL:                "/assets/app-OLDHASH.js",
			ExpectedStatus:     404,
			NotExpectedContent: []string{`<div id="app">`},
		},
		{
			Name:               "missing file with an extension is a 404",
			Method:             http.MethodGet,
			URL:                "/robots.txt",
			ExpectedStatus:     404,
			NotExpectedContent: []string{`<div id="app">`},
		},
		{
			Name:            "tracker route wins over the dashboard",
			Method:          http.MethodGet,
			URL:             "/t.js",
			ExpectedStatus:  200,
			ExpectedContent: []string{"/api/collect"},
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, map[string]string{
					"Cache-Control":               "public, max-age=3600, stale-while-revalidate=86400",
					"Access-Control-Allow-Origin": "*",
				})
			},
		},
		{
			Name:            "API routes are not shadowed",
			Method:          http.MethodGet,
			URL:             "/api/health",
			ExpectedStatus:  200,
			ExpectedContent: []string{`"message":"API is healthy."`},
		},
		{
			Name:               "unknown API path is a JSON 404",
			Method:             http.MethodGet,
			URL:                "/api/nope",
			ExpectedStatus:     404,
			ExpectedContent:    []string{`"status":404`},
			NotExpectedContent: []string{`<div id="app">`},
		},
		{
			Name:   "sign-up open: anyone may create a user",
			Method: http.MethodGet,
			URL:    hooks.SignupPath,
			BeforeTestFunc: func(t testing.TB, app *tests.TestApp, _ *core.ServeEvent) {
				setUsersCreateRule(t, app, types.Pointer(""))
			},
			ExpectedStatus:  200,
			ExpectedContent: []string{`{"open":true}`},
		},
		{
			Name:            "sign-up closed: only superusers create users",
			Method:          http.MethodGet,
			URL:             hooks.SignupPath,
			BeforeTestFunc:  func(t testing.TB, app *tests.TestApp, _ *core.ServeEvent) { setUsersCreateRule(t, app, nil) },
			ExpectedStatus:  200,
			ExpectedContent: []string{`{"open":false}`},
		},
		{
			Name:               "admin UI paths are not shadowed",
			Method:             http.MethodGet,
			URL:                "/_/",
			ExpectedStatus:     404,
			NotExpectedContent: []string{`<div id="app">`},
		},
	}
	for _, s := range scenarios {
		s.TestAppFactory = factory
		s.Test(t)
	}
}

func setUsersCreateRule(t testing.TB, app *tests.TestApp, rule *string) {
	t.Helper()
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	users.CreateRule = rule
	if err := app.Save(users); err != nil {
		t.Fatal(err)
	}
}

// Under a host app the dashboard lives under its own path and leaves "/"
// to the host.
func TestDashboardUnderPath(t *testing.T) {
	factory := func(t testing.TB) *tests.TestApp {
		app, err := tests.NewTestApp()
		if err != nil {
			t.Fatal(err)
		}
		if err := hooks.RegisterDashboard(app, "/analytics/"); err != nil {
			t.Fatal(err)
		}
		return app
	}
	scenarios := []tests.ApiScenario{
		{
			Name:            "page with its base",
			Method:          http.MethodGet,
			URL:             "/analytics/",
			ExpectedStatus:  200,
			ExpectedContent: []string{`<div id="app">`, `<base href="/analytics/">`},
		},
		{
			Name:            "deep link",
			Method:          http.MethodGet,
			URL:             "/analytics/sites/abc/live",
			ExpectedStatus:  200,
			ExpectedContent: []string{`<base href="/analytics/">`},
		},
		{
			Name:            "favicon under the path",
			Method:          http.MethodGet,
			URL:             "/analytics/favicon.svg",
			ExpectedStatus:  200,
			ExpectedContent: []string{"<svg"},
		},
		{
			Name:           "path without its slash redirects",
			Method:         http.MethodGet,
			URL:            "/analytics",
			ExpectedStatus: 301,
		},
		{
			Name:               "the host's / is not taken",
			Method:             http.MethodGet,
			URL:                "/",
			ExpectedStatus:     404,
			NotExpectedContent: []string{`<div id="app">`},
		},
	}
	for _, s := range scenarios {
		s.TestAppFactory = factory
		s.Test(t)
	}
}
