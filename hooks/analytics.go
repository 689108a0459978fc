package hooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/internal/goals"
	"github.com/pocketlytics/pocketlytics/internal/queryparams"
	"github.com/pocketlytics/pocketlytics/internal/ratelimit"
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

	// RateLimit is the sustained requests per second one client may make
	// (default 20, bursts of twice that: a dashboard loads about ten at
	// once). A client is its auth record when signed in, else its address;
	// superusers are not limited.
	RateLimit float64

	// MaxQueryString bounds a request's query string in bytes (default
	// 16 KiB): filters beyond it cost the store far more than a dashboard
	// ever sends.
	MaxQueryString int

	// MaxConcurrent bounds the requests querying the store at once
	// (default 8); the others wait for a turn until their QueryTimeout.
	MaxConcurrent int
}

// Defaults of AnalyticsConfig.
const (
	DefaultAnalyticsRate  = 20
	DefaultMaxQueryString = 16 << 10
	DefaultMaxConcurrent  = 8
)

// RegisterAnalytics binds the analytics API (see docs/API.md):
//
//	GET /api/analytics/sites/{siteId}/overview
//	GET /api/analytics/sites/{siteId}/timeseries
//	GET /api/analytics/sites/{siteId}/breakdown/{dimension}
//	GET /api/analytics/sites/{siteId}/funnels
//	GET /api/analytics/sites/{siteId}/funnels/{funnelId}
//	GET /api/analytics/sites/{siteId}/export
//
// with the query parameters period, from, to, interval, filters, limit,
// page and, for the time series and breakdowns, format (json or csv; see
// export.go); export returns a zip of the CSVs. A public site is readable
// by anyone; any other site by those the sites collection's view rule admits (owner, admins, members, superusers), by a
// share link of the site and by an API key that lists it (see package
// access). For everyone else the site does not exist: 404, as for an
// unknown id.
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
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = DefaultAnalyticsRate
	}
	if cfg.MaxQueryString <= 0 {
		cfg.MaxQueryString = DefaultMaxQueryString
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	h := &analyticsAPI{
		cfg:     cfg,
		limiter: ratelimit.New(ratelimit.Options{Rate: cfg.RateLimit}),
		turns:   make(chan struct{}, cfg.MaxConcurrent),
	}
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		g := se.Router.Group("/api/analytics/sites/{siteId}")
		g.GET("/overview", h.overview)
		g.GET("/timeseries", h.timeseries)
		g.GET("/breakdown/{dimension}", h.breakdown)
		g.GET("/funnels", h.funnels)
		g.GET("/funnels/{funnelId}", h.funnel)
		g.GET("/export", h.export)
		return se.Next()
	})
	return nil
}

type analyticsAPI struct {
	cfg     AnalyticsConfig
	limiter *ratelimit.Limiter
	turns   chan struct{} // a slot per request querying the store
}

// clientKey names who is rate-limited: the auth record, else the address
// (share viewers and API keys too: a made-up token must not buy a new
// bucket).
func clientKey(e *core.RequestEvent) string {
	if e.Auth != nil {
		return "auth:" + e.Auth.Collection().Id + ":" + e.Auth.Id
	}
	return "ip:" + e.RealIP()
}

// admit refuses requests over the client's rate or with an oversized query
// string, before any other work.
func (h *analyticsAPI) admit(e *core.RequestEvent) error {
	if len(e.Request.URL.RawQuery) > h.cfg.MaxQueryString {
		return e.Error(http.StatusRequestURITooLong, "The query string is too long; send fewer or shorter filters.", nil)
	}
	if !e.HasSuperuserAuth() && !h.limiter.Allow(clientKey(e)) {
		return e.TooManyRequestsError("Too many analytics requests, slow down.", nil)
	}
	return nil
}

// acquire starts a request's store work: its deadline (QueryTimeout) and,
// waiting if need be, a slot to query the store. Call release when done.
func (h *analyticsAPI) acquire(e *core.RequestEvent) (ctx context.Context, release func(), err error) {
	ctx, cancel := context.WithTimeout(e.Request.Context(), h.cfg.QueryTimeout)
	select {
	case h.turns <- struct{}{}:
		return ctx, func() { <-h.turns; cancel() }, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, apis.NewApiError(http.StatusServiceUnavailable, "The analytics store is busy; try again shortly.", ctx.Err())
	}
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

// canViewID runs the sites view rule for the site id, whether or not it
// exists: one query either way.
func canViewID(e *core.RequestEvent, id string) (bool, error) {
	collection, err := e.App.FindCachedCollectionByNameOrId(sitecache.Collection)
	if err != nil {
		return false, e.InternalServerError("", err)
	}
	info, err := e.RequestInfo()
	if err != nil {
		return false, e.BadRequestError("", err)
	}
	record := core.NewRecord(collection)
	record.Id = id
	ok, _ := e.App.CanAccessRecord(record, info, collection.ViewRule)
	return ok, nil
}

// canRead reports whether the request may read the statistics of a site
// that is not public: by a share link of the site (share=…), an API key
// that lists it (Authorization: Bearer plk_…), or else the sites view rule.
// An unknown site costs what a forbidden one does (the routes do not tell
// which): the same lookups, then 404.
func canRead(e *core.RequestEvent, id string) (bool, error) {
	q := e.Request.URL.Query()
	if q.Has(access.ShareParam) {
		return access.ShareOpens(e.App, id, map[string]string{
			access.ShareParam: q.Get(access.ShareParam),
			access.ProofParam: q.Get(access.ProofParam),
		}, false), nil
	}
	if key, ok := access.BearerKey(e.Request.Header.Get("Authorization")); ok {
		return access.KeyOpens(e.App, id, key), nil
	}
	return canViewID(e, id)
}

// site admits the request and resolves its site: 404 when the caller may
// not see it.
func (h *analyticsAPI) site(e *core.RequestEvent) (sitecache.Site, error) {
	if err := h.admit(e); err != nil {
		return sitecache.Site{}, err
	}
	id := e.Request.PathValue("siteId")
	site, known := h.cfg.Sites.Get(id)
	if !known || !site.Public {
		allowed, err := canRead(e, id)
		if err != nil {
			return sitecache.Site{}, err
		}
		if !known || !allowed {
			return sitecache.Site{}, e.NotFoundError("", nil)
		}
	}
	return site, nil
}

// request resolves the site (see site) and parses the query parameters
// (400 when they are wrong).
func (h *analyticsAPI) request(e *core.RequestEvent) (queryparams.Params, *time.Location, error) {
	site, err := h.site(e)
	if err != nil {
		return queryparams.Params{}, nil, err
	}
	id := site.ID

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
	if needsGoals(p.Query, e.Request.PathValue("dimension")) {
		if p.Query.Goals, err = goals.Site(e.App, id); err != nil {
			return queryparams.Params{}, nil, e.InternalServerError("", err)
		}
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

func (h *analyticsAPI) overview(e *core.RequestEvent) error {
	p, loc, err := h.request(e)
	if err != nil {
		return err
	}
	ctx, release, err := h.acquire(e)
	if err != nil {
		return err
	}
	defer release()

	cur, prev, err := withPrevious(ctx, p, h.cfg.Store.Overview)
	if err != nil {
		return storeError(e, err)
	}
	return e.JSON(http.StatusOK, struct {
		Range         rangeJSON      `json:"range"`
		Current       store.Overview `json:"current"`
		Previous      store.Overview `json:"previous"`
		PreviousRange spanJSON       `json:"previousRange"`
	}{newRange(p, loc, ""), cur, prev, spanJSON{p.PrevFrom.In(loc), p.PrevTo.In(loc)}})
}

func (h *analyticsAPI) timeseries(e *core.RequestEvent) error {
	p, loc, err := h.request(e)
	if err != nil {
		return err
	}
	asCSV, err := wantsCSV(e)
	if err != nil {
		return err
	}
	compare, err := wantsPrevious(e)
	if err != nil {
		return err
	}
	if compare && asCSV {
		return e.BadRequestError("The time series CSV has no compare: leave out one of format and compare.", nil)
	}
	ctx, release, err := h.acquire(e)
	if err != nil {
		return err
	}
	defer release()
	if !compare {
		points, err := h.cfg.Store.Timeseries(ctx, p.Query, p.Interval)
		if err != nil {
			return storeError(e, err)
		}
		if asCSV {
			return sendCSV(e, "timeseries.csv", encodeCSV(points))
		}
		return e.JSON(http.StatusOK, struct {
			Range  rangeJSON     `json:"range"`
			Points []store.Point `json:"points"`
		}{newRange(p, loc, p.Interval), points})
	}

	points, prev, err := withPrevious(ctx, p, func(ctx context.Context, q store.Query) ([]store.Point, error) {
		return h.cfg.Store.Timeseries(ctx, q, p.Interval)
	})
	if err != nil {
		return storeError(e, err)
	}
	return e.JSON(http.StatusOK, struct {
		Range          rangeJSON     `json:"range"`
		Points         []store.Point `json:"points"`
		PreviousRange  spanJSON      `json:"previousRange"`
		PreviousPoints []store.Point `json:"previousPoints"`
	}{newRange(p, loc, p.Interval), points, spanJSON{p.PrevFrom.In(loc), p.PrevTo.In(loc)}, prev})
}

// withPrevious runs query for p's period and, beside it, for the period
// before, which the overview and the time series compare against.
func withPrevious[T any](ctx context.Context, p queryparams.Params, query func(context.Context, store.Query) (T, error)) (cur, prev T, err error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := query(ctx, p.Previous())
		ch <- result{v, err}
	}()
	cur, err = query(ctx, p.Query)
	pr := <-ch
	if err == nil {
		err = pr.err
	}
	return cur, pr.v, err
}

// wantsPrevious reads the time series' compare parameter: "previous" adds
// the comparison period's points, in the same buckets, for an overlay.
func wantsPrevious(e *core.RequestEvent) (bool, error) {
	switch c := e.Request.URL.Query().Get("compare"); c {
	case "":
		return false, nil
	case "previous":
		return true, nil
	default:
		return false, e.BadRequestError(fmt.Sprintf("Unknown compare %q (want previous).", c), nil)
	}
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
	asCSV, err := wantsCSV(e)
	if err != nil {
		return err
	}
	ctx, release, err := h.acquire(e)
	if err != nil {
		return err
	}
	defer release()
	b, err := h.cfg.Store.Breakdown(ctx, p.Query, dim, p.Limit, p.Offset())
	if err != nil {
		return storeError(e, err)
	}
	if asCSV {
		return sendCSV(e, strings.ReplaceAll(string(dim), ":", "_")+".csv", encodeCSV(b.Rows))
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
