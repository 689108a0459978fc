package hooks

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/queryparams"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// AnalyticsConfig configures the analytics API.
type AnalyticsConfig struct {
	// Store answers the queries (required).
	Store store.Querier
	// Sites gives each site's timezone and public flag (required).
	Sites *sitecache.Cache
	// RetentionDays rejects ranges that start before the oldest events the
	// store keeps (0: keep forever, no limit).
	RetentionDays int
	// QueryTimeout bounds each request's store queries (default 30s).
	QueryTimeout time.Duration
	// Now returns the current time (default time.Now); tests pin it.
	Now func() time.Time
}

// RegisterAnalytics binds the analytics API (see docs/API.md):
//
//	GET /api/analytics/sites/{siteId}/overview
//	GET /api/analytics/sites/{siteId}/timeseries
//	GET /api/analytics/sites/{siteId}/breakdown/{dimension}
//
// with the query parameters period, from, to, interval, filters, limit and
// page. A public site is readable by anyone; any other site by those the
// sites collection's view rule admits (owner, members, superusers). For
// everyone else the site does not exist: 404, as for an unknown id.
func RegisterAnalytics(app core.App, cfg AnalyticsConfig) error {
	if cfg.Store == nil {
		return errors.New("hooks: RegisterAnalytics needs a Store")
	}
	if cfg.Sites == nil {
		return errors.New("hooks: RegisterAnalytics needs the site cache")
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &analyticsAPI{cfg: cfg}
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		g := se.Router.Group("/api/analytics/sites/{siteId}")
		g.GET("/overview", h.overview)
		g.GET("/timeseries", h.timeseries)
		g.GET("/breakdown/{dimension}", h.breakdown)
		return se.Next()
	})
	return nil
}

type analyticsAPI struct {
	cfg AnalyticsConfig
}

// rangeJSON describes the range a response covers, in the site's timezone.
type rangeJSON struct {
	Period   string    `json:"period"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Timezone string    `json:"timezone"`
	Interval string    `json:"interval,omitempty"`
}

// spanJSON is the comparison period of an overview.
type spanJSON struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func newRange(p queryparams.Params, loc *time.Location, interval store.Interval) rangeJSON {
	return rangeJSON{Period: p.Period, From: p.From.In(loc), To: p.To.In(loc), Timezone: loc.String(), Interval: string(interval)}
}

// request resolves the site (404 when the caller may not see it) and parses
// the query parameters (400 when they are wrong).
func (h *analyticsAPI) request(e *core.RequestEvent) (queryparams.Params, *time.Location, error) {
	id := e.Request.PathValue("siteId")
	site, ok := h.cfg.Sites.Get(id)
	if !ok {
		return queryparams.Params{}, nil, e.NotFoundError("", nil)
	}
	if !site.Public {
		record, err := e.App.FindRecordById(sitecache.Collection, id)
		if err != nil {
			return queryparams.Params{}, nil, e.NotFoundError("", nil)
		}
		info, err := e.RequestInfo()
		if err != nil {
			return queryparams.Params{}, nil, e.BadRequestError("", err)
		}
		if ok, _ := e.App.CanAccessRecord(record, info, record.Collection().ViewRule); !ok {
			return queryparams.Params{}, nil, e.NotFoundError("", nil)
		}
	}

	loc := time.UTC
	if site.Timezone != "" {
		if l, err := time.LoadLocation(site.Timezone); err == nil {
			loc = l
		} else {
			e.App.Logger().Warn("analytics: unknown site timezone, using UTC", "site", id, "timezone", site.Timezone)
		}
	}
	p, err := queryparams.Parse(e.Request.URL.Query(), id, loc, h.cfg.Now(), h.cfg.RetentionDays)
	if err != nil {
		return queryparams.Params{}, nil, badRequest(e, err)
	}
	return p, loc, nil
}

// badRequest reports a parameter error in PocketBase's shape, with the
// reason as the message.
func badRequest(e *core.RequestEvent, err error) error {
	msg := err.Error()
	for _, prefix := range []string{queryparams.ErrInvalid.Error() + ": ", store.ErrInvalidQuery.Error() + ": "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:] + "."
	}
	return e.BadRequestError(msg, nil)
}

// storeError maps a failed query: bad input to 400, a query past its
// deadline or an unreachable store to 503, the rest to 500.
func storeError(e *core.RequestEvent, err error) error {
	if errors.Is(err, store.ErrInvalidQuery) {
		return badRequest(e, err)
	}
	if errors.Is(err, store.ErrTimeout) {
		return apis.NewApiError(http.StatusServiceUnavailable, "The analytics query took too long; try a shorter period or fewer filters.", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		return apis.NewApiError(http.StatusServiceUnavailable, "The analytics store is not reachable yet; try again shortly.", err)
	}
	return e.InternalServerError("The analytics query failed.", err)
}

func (h *analyticsAPI) context(e *core.RequestEvent) (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.Request.Context(), h.cfg.QueryTimeout)
}

func (h *analyticsAPI) overview(e *core.RequestEvent) error {
	p, loc, err := h.request(e)
	if err != nil {
		return err
	}
	ctx, cancel := h.context(e)
	defer cancel()

	// The comparison runs beside the current period's query.
	type result struct {
		ov  store.Overview
		err error
	}
	prev := make(chan result, 1)
	go func() {
		ov, err := h.cfg.Store.Overview(ctx, p.Previous())
		prev <- result{ov, err}
	}()
	cur, err := h.cfg.Store.Overview(ctx, p.Query)
	pr := <-prev
	if err == nil {
		err = pr.err
	}
	if err != nil {
		return storeError(e, err)
	}
	return e.JSON(http.StatusOK, struct {
		Range         rangeJSON      `json:"range"`
		Current       store.Overview `json:"current"`
		Previous      store.Overview `json:"previous"`
		PreviousRange spanJSON       `json:"previousRange"`
	}{newRange(p, loc, ""), cur, pr.ov, spanJSON{p.PrevFrom.In(loc), p.PrevTo.In(loc)}})
}

func (h *analyticsAPI) timeseries(e *core.RequestEvent) error {
	p, loc, err := h.request(e)
	if err != nil {
		return err
	}
	ctx, cancel := h.context(e)
	defer cancel()
	points, err := h.cfg.Store.Timeseries(ctx, p.Query, p.Interval)
	if err != nil {
		return storeError(e, err)
	}
	return e.JSON(http.StatusOK, struct {
		Range  rangeJSON     `json:"range"`
		Points []store.Point `json:"points"`
	}{newRange(p, loc, p.Interval), points})
}

func (h *analyticsAPI) breakdown(e *core.RequestEvent) error {
	p, loc, err := h.request(e)
	if err != nil {
		return err
	}
	dim, err := store.ParseDimension(e.Request.PathValue("dimension"))
	if err != nil {
		return badRequest(e, err)
	}
	ctx, cancel := h.context(e)
	defer cancel()
	b, err := h.cfg.Store.Breakdown(ctx, p.Query, dim, p.Limit, p.Offset())
	if err != nil {
		return storeError(e, err)
	}
	return e.JSON(http.StatusOK, struct {
		Range      rangeJSON       `json:"range"`
		Dimension  store.Dimension `json:"dimension"`
		Page       int             `json:"page"`
		PerPage    int             `json:"perPage"`
		TotalItems int             `json:"totalItems"`
		TotalPages int             `json:"totalPages"`
		Items      []store.Row     `json:"items"`
	}{newRange(p, loc, ""), dim, p.Page, p.Limit, b.Total, (b.Total + p.Limit - 1) / p.Limit, b.Rows})
}
