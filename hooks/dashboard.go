package hooks

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	pbpublic "github.com/pocketlytics/pocketlytics/pb_public"
)

const (
	// Hashed file names change with their content, so they never go stale.
	immutableCacheControl = "public, max-age=31536000, immutable"
	// The page names the current hashed assets: always revalidate it.
	pageCacheControl = "no-cache"
	// Unhashed files (the favicon).
	plainCacheControl = "public, max-age=3600"

	// frame-ancestors is added per page (see frameAncestors).
	dashboardCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
		"img-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors "
)

// SignupPath answers whether the sign-in page offers to create an account:
// {"open": true} when the users collection's create rule lets others than
// superusers create users. The page asks here rather than probing the
// collection with a create that fails.
const SignupPath = "/api/analytics/signup"

// RegisterDashboard serves the embedded dashboard under base ("/" or a
// path such as "/analytics/", ending in "/") as a single-page app: known
// files as they are, hashed assets/ with a year-long cache, and any other
// path without a file extension falls back to index.html so that deep links
// load the app. The page gets a <base href> of base, which the app's paths
// and assets are relative to.
//
// It binds the lowest-priority route under base (GET base{path...}), as
// PocketBase's apis.Static does in its examples, so every other route wins;
// at "/", paths under /api/ and /_/ that no route claimed get PocketBase's
// JSON 404 instead of the page. Under another base, base without its slash
// redirects to base.
func RegisterDashboard(app core.App, base string) error {
	if !strings.HasPrefix(base, "/") || !strings.HasSuffix(base, "/") {
		return fmt.Errorf("dashboard: the path must start and end with /, got %q", base)
	}
	assets, err := loadAssets(pbpublic.FS())
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	page, ok := assets["index.html"]
	if !ok {
		return fmt.Errorf("dashboard: index.html is missing from the embedded files; run scripts/build-web.sh")
	}
	head := bytes.Index(page.body, []byte("<head>")) + len("<head>")
	if head < len("<head>") {
		return fmt.Errorf("dashboard: index.html has no <head>")
	}
	index := newAsset("index.html", slices.Concat(page.body[:head],
		[]byte("\n<base href=\""+html.EscapeString(base)+"\">"), page.body[head:]))

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET(SignupPath, signupOpen)
		if base != "/" {
			se.Router.GET(strings.TrimSuffix(base, "/"), func(e *core.RequestEvent) error {
				return e.Redirect(http.StatusMovedPermanently, base)
			})
		}
		se.Router.GET(base+"{path...}", func(e *core.RequestEvent) error {
			name := e.Request.PathValue("path")
			if base == "/" && (name == "api" || name == "_" || strings.HasPrefix(name, "api/") || strings.HasPrefix(name, "_/")) {
				return e.NotFoundError("", nil)
			}

			if a, ok := assets[name]; ok && name != "index.html" {
				cc := plainCacheControl
				if strings.HasPrefix(name, "assets/") {
					cc = immutableCacheControl
				}
				return a.serve(e, cc)
			}

			// A missing script or stylesheet must be a 404: the page in its
			// place would fail in confusing ways.
			if name != "index.html" && (strings.HasPrefix(name, "assets/") || path.Ext(name) != "") {
				return e.NotFoundError("", nil)
			}

			// Only a share page may be framed, by its site's embed origins.
			ancestors := frameAncestors(e.App, name)
			e.Response.Header().Set("Content-Security-Policy", dashboardCSP+ancestors)
			if ancestors == "'none'" {
				e.Response.Header().Set("X-Frame-Options", "DENY")
			}
			e.Response.Header().Set("Referrer-Policy", "same-origin")
			return index.serve(e, pageCacheControl)
		}).Bind(apis.SkipSuccessActivityLog()) // like PocketBase's apis.Static: no log row per asset
		return se.Next()
	})
	return nil
}

// signupOpen answers SignupPath. A rule that is set, even one that admits
// only some requests, counts as open: the sign-up form reports a refusal.
func signupOpen(e *core.RequestEvent) error {
	users, err := e.App.FindCachedCollectionByNameOrId("users")
	if err != nil {
		return e.InternalServerError("", err)
	}
	return e.JSON(http.StatusOK, map[string]bool{"open": users.CreateRule != nil})
}
