package hooks

import (
	"fmt"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	pbpublic "github.com/pocketlytics/pocketlytics/pb_public"
)

// trackerCacheControl lets browsers and CDNs keep t.js for an hour and serve
// a stale copy for a day while they revalidate, so a deploy reaches every
// site within the hour without costing a round trip per page view.
const trackerCacheControl = "public, max-age=3600, stale-while-revalidate=86400"

// RegisterTracker serves the tracker script at GET /t.js from the binary:
// an ETag with 304 answers, gzip when accepted, and CORS open to any origin
// (the script is embedded by the tracked sites, never by the dashboard).
//
//	<script defer src="https://HOST/t.js" data-site="SITE_ID"></script>
func RegisterTracker(app core.App) error {
	assets, err := loadAssets(pbpublic.FS())
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	script, ok := assets["t.js"]
	if !ok {
		return fmt.Errorf("tracker: t.js is missing from the embedded files; run scripts/build-web.sh")
	}

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		// Every caller is a visitor of a tracked site, once per page view:
		// no request-log row (it would hold their IP), not even for a
		// failed write.
		se.Router.GET("/t.js", func(e *core.RequestEvent) error {
			h := e.Response.Header()
			h.Set("Access-Control-Allow-Origin", "*")
			// Pages that set Cross-Origin-Embedder-Policy may still load it.
			h.Set("Cross-Origin-Resource-Policy", "cross-origin")
			return script.serve(e, trackerCacheControl)
		}).Unbind(apis.DefaultActivityLoggerMiddlewareId)
		return se.Next()
	})
	return nil
}
