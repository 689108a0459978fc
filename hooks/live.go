package hooks

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/realtime"
)

// LiveConfig configures the live polling route.
type LiveConfig struct {
	// Live is the live layer whose state the route reports (required).
	Live *realtime.Live
	// Arrivals is how many recent arrivals a response lists unless the
	// request asks for another number with ?arrivals= (default 20, at most 100).
	Arrivals int
}

const maxLiveArrivals = 100

// RegisterLive binds GET /api/analytics/sites/{siteId}/live: the polling
// fallback of the live layer for clients that cannot hold an SSE connection.
// It returns the site's live count, recent arrivals, active pages, referrer
// hosts of live visitors, today's per-minute online series and whether live
// messages are pushed (see realtime.Status). Anyone may read a public site's;
// any other site's, those the sites view rule admits, a live share link
// (realtime.CanView) and an API key that lists the site. For everyone else
// the site does not exist (404).
func RegisterLive(app core.App, cfg LiveConfig) error {
	if cfg.Live == nil {
		return errors.New("hooks: RegisterLive needs a realtime.Live")
	}
	if cfg.Arrivals <= 0 {
		cfg.Arrivals = 20
	}
	cfg.Arrivals = min(cfg.Arrivals, maxLiveArrivals)

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		// Dashboards poll this every few seconds: keep successes out of the request log.
		se.Router.GET("/api/analytics/sites/{siteId}/live", func(e *core.RequestEvent) error {
			return liveStatus(e, cfg)
		}).Bind(apis.SkipSuccessActivityLog())
		return se.Next()
	})
	return nil
}

func liveStatus(e *core.RequestEvent, cfg LiveConfig) error {
	id := e.Request.PathValue("siteId")
	site, err := e.App.FindRecordById(realtime.SitesCollection, id)
	if err != nil {
		// As much work as a forbidden site: the 404s do not tell which.
		_, _ = canViewID(e, id)
		return e.NotFoundError("", nil)
	}
	info, err := e.RequestInfo()
	if err != nil {
		return e.BadRequestError("", err)
	}
	if !realtime.CanView(e.App, site, info) {
		key, ok := access.BearerKey(e.Request.Header.Get("Authorization"))
		if !ok || !access.KeyOpens(e.App, site.Id, key) {
			return e.NotFoundError("", nil)
		}
	}

	n := cfg.Arrivals
	if raw := e.Request.URL.Query().Get("arrivals"); raw != "" {
		v, err := strconv.Atoi(raw)
		if err != nil || v < 0 || v > maxLiveArrivals {
			return e.BadRequestError("arrivals must be a number from 0 to 100.", err)
		}
		n = v
	}

	st, err := cfg.Live.Status(e.Request.Context(), site.Id, siteLocation(site), n)
	if err != nil {
		return e.Error(http.StatusServiceUnavailable, "Live state is unavailable, try again shortly.", err)
	}
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(http.StatusOK, st)
}
