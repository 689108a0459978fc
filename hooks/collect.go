package hooks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pocketlytics/pocketlytics/internal/enrich"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/lograte"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
	"github.com/pocketlytics/pocketlytics/internal/queue"
	"github.com/pocketlytics/pocketlytics/internal/ratelimit"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// CollectPath is the ingest route.
const CollectPath = "/api/collect"

// DroppedHeader names the reason a hit was answered 202 but not recorded
// (a bot, say): the tracker cannot tell otherwise, and tests and operators
// can.
const DroppedHeader = "X-Pocketlytics-Dropped"

// LivePublisher receives every accepted event for the live dashboards.
// Publish must not block.
type LivePublisher interface{ Publish(ev event.Event) }

// CollectConfig configures the ingest route.
type CollectConfig struct {
	// Sites resolves a hit's site id without SQL (required).
	Sites *sitecache.Cache

	// Enricher turns a hit into an event or a drop reason (required).
	Enricher *enrich.Pipeline

	// Queue receives accepted events; a hit is answered 202 only once
	// Enqueue returned (required). Enqueue must bound its own wait: the
	// queues here do (the spool gives Redis 500 ms, then writes to disk).
	Queue queue.Producer

	// Live is told about each accepted event (optional).
	Live LivePublisher

	// RateLimit is the sustained hits per second allowed per client IP
	// (IPv6: per /64); bursts of twice that pass. Zero means config.RateLimit.
	RateLimit float64

	// TrackLocalhost accepts hits from pages on localhost, loopback
	// addresses and *.localhost, whatever the site's domains. Without it
	// they are refused.
	TrackLocalhost bool

	// OnHit sees each enriched event before it is queued and may change it
	// (optional; analytics.OnHit). keep false drops the hit, answered 202
	// with DroppedHeader "hook"; an error is the answer.
	OnHit func(e *core.RequestEvent, ev *event.Event) (keep bool, err error)
}

// RegisterCollect binds POST /api/collect, where the tracker sends hits, and
// its CORS preflight.
//
// The route is built for volume and hostile input: it skips PocketBase's
// request log (no log row per hit), auth token parsing, global CORS
// (the tracker runs on any origin, whatever --origins allows for the
// dashboard), PocketBase's own rate limiter and its 32 MB body limit, and
// sets PocketBase's security headers only on errors (a 202 has no body); it
// reads at most hit.MaxBodySize bytes, limits each client IP, and answers
// bad hits with a 4xx in PocketBase's error shape before any I/O. The only
// 5xx is 503, when the queue did not take the event.
//
//	hooks.RegisterCollect(app, hooks.CollectConfig{
//		Sites:    sitecache.Register(app),
//		Enricher: pipeline,
//		Queue:    q,
//	})
func RegisterCollect(app core.App, cfg CollectConfig) error {
	if cfg.Sites == nil || cfg.Enricher == nil || cfg.Queue == nil {
		return errors.New("hooks: RegisterCollect needs Sites, Enricher and Queue")
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = config.RateLimit
	}

	c := &collector{
		cfg:        cfg,
		limiter:    ratelimit.New(ratelimit.Options{Rate: cfg.RateLimit}),
		refused:    map[string]prometheus.Counter{},
		queueFault: lograte.Every(10 * time.Second),
		state:      ingestStateOf(app),
	}
	for _, r := range []string{
		reasonRateLimited, reasonTooLarge, reasonMediaType, reasonBadRequest,
		reasonUnknownSite, reasonHostNotAllowed, reasonLocalhost, reasonNotQueued,
	} {
		c.refused[r] = metrics.HitsDropped.WithLabelValues(r)
	}

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST(CollectPath, c.collect).Unbind(skippedMiddlewares...)
		se.Router.OPTIONS(CollectPath, preflight).Unbind(skippedMiddlewares...)
		return se.Next()
	})
	return nil
}

// skippedMiddlewares are PocketBase's global middlewares the ingest route
// does without (see RegisterCollect).
var skippedMiddlewares = []string{
	apis.DefaultActivityLoggerMiddlewareId,
	apis.DefaultBodyLimitMiddlewareId,
	apis.DefaultCorsMiddlewareId,
	apis.DefaultRateLimitMiddlewareId,
	apis.DefaultLoadAuthTokenMiddlewareId,
	apis.DefaultSecurityHeadersMiddlewareId, // set on errors only (collect)
}

// Reasons a hit is refused, the label of metrics.HitsDropped.
const (
	reasonRateLimited    = "rate_limited"
	reasonTooLarge       = "too_large"
	reasonMediaType      = "unsupported_media_type"
	reasonBadRequest     = "bad_request"
	reasonUnknownSite    = "unknown_site"
	reasonHostNotAllowed = "host_not_allowed"
	reasonLocalhost      = "localhost"
	reasonNotQueued      = "not_queued"
	reasonHook           = "hook" // an OnHit handler dropped it
)

type collector struct {
	cfg     CollectConfig
	limiter *ratelimit.Limiter
	refused map[string]prometheus.Counter // filled once, read-only after
	// queueFault bounds the log entries of a queue that refuses every hit
	// (a full disk): one per 10 seconds, not one per hit.
	queueFault *lograte.Limiter
	state      *ingestState // what health reports of ingest
}

// securityHeaders are those of PocketBase's securityHeaders middleware,
// which the route skips: they matter for an answer with a body, an error's
// JSON, not for the 202 without one that nearly every hit gets.
var securityHeaders = [][2]string{
	{"X-Xss-Protection", "1; mode=block"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
}

func (c *collector) collect(e *core.RequestEvent) error {
	h := e.Response.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", DroppedHeader)
	err := c.accept(e, h)
	if err != nil {
		for _, sh := range securityHeaders {
			h.Set(sh[0], sh[1])
		}
	}
	return err
}

// accept answers a hit 202 once it is queued (or dropped, naming the reason
// in DroppedHeader), or returns why it was refused.
func (c *collector) accept(e *core.RequestEvent, h http.Header) error {
	start := time.Now()
	ip := e.RealIP()
	if !c.limiter.Allow(ip) {
		c.refused[reasonRateLimited].Inc()
		h.Set("Retry-After", "1")
		return e.TooManyRequestsError("Too many hits from this address, slow down.", nil)
	}

	if !acceptedMediaType(e.Request.Header.Get("Content-Type")) {
		c.refused[reasonMediaType].Inc()
		return e.Error(http.StatusUnsupportedMediaType, "Send the hit as application/json or text/plain.", nil)
	}

	raw, err := io.ReadAll(http.MaxBytesReader(e.Response, e.Request.Body, hit.MaxBodySize))
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		c.refused[reasonTooLarge].Inc()
		return e.Error(http.StatusRequestEntityTooLarge, "The hit is larger than 8 KiB.", nil)
	}
	if err != nil {
		c.refused[reasonBadRequest].Inc()
		return e.BadRequestError("Failed to read the request body.", nil)
	}

	body, err := hit.Parse(raw)
	if err != nil {
		c.refused[reasonBadRequest].Inc()
		return hitError(e, err)
	}

	site, ok := c.cfg.Sites.Get(body.Site)
	if !ok {
		c.refused[reasonUnknownSite].Inc()
		return e.BadRequestError("Unknown site.", validation.Errors{
			"site": validation.NewError("validation_unknown_site", "No site has this id."),
		})
	}

	host := body.Host
	if isLocalhost(host) {
		if !c.cfg.TrackLocalhost {
			c.refused[reasonLocalhost].Inc()
			return e.ForbiddenError("Hits from localhost are not tracked (set TRACK_LOCALHOST=true to track them).", validation.Errors{
				"url": validation.NewError("validation_localhost", "The page is on localhost."),
			})
		}
	} else if !site.AllowsHost(host) {
		c.refused[reasonHostNotAllowed].Inc()
		return e.ForbiddenError("The page's host is not one of the site's domains.", validation.Errors{
			"url": validation.NewError("validation_host_not_allowed", "Add this host to the site's domains to track it."),
		})
	}

	// Not canceled when the sender goes away: a hit read whole is worth
	// keeping. The session store and the queue bound their own waits.
	ctx := context.WithoutCancel(e.Request.Context())
	addr, _ := netip.ParseAddr(ip)
	ev, drop := c.cfg.Enricher.Run(ctx, &enrich.Input{
		Hit:       body,
		Site:      site,
		IP:        addr,
		UserAgent: e.Request.UserAgent(),
		Header:    e.Request.Header,
		Now:       start,
	})
	if drop != "" {
		metrics.HitsDropped.WithLabelValues(drop).Inc()
		h.Set(DroppedHeader, drop)
		return e.NoContent(http.StatusAccepted)
	}
	if c.cfg.OnHit != nil {
		keep, err := c.cfg.OnHit(e, &ev)
		if err != nil {
			return err
		}
		if !keep {
			metrics.HitsDropped.WithLabelValues(reasonHook).Inc()
			h.Set(DroppedHeader, reasonHook)
			return e.NoContent(http.StatusAccepted)
		}
	}

	if err := c.cfg.Queue.Enqueue(ctx, ev); err != nil {
		c.refused[reasonNotQueued].Inc()
		c.state.failed(err)
		if n, ok := c.queueFault.Allow(); ok {
			e.App.Logger().Warn("Failed to queue a hit", slog.String("error", err.Error()), slog.Int64("suppressed", n))
		}
		return e.Error(http.StatusServiceUnavailable, "The hit was not queued, try again later.", nil)
	}

	c.state.queued()
	metrics.HitsAccepted.Inc()
	metrics.IngestLatency.Observe(time.Since(start).Seconds())
	if c.cfg.Live != nil {
		c.cfg.Live.Publish(ev)
	}
	return e.NoContent(http.StatusAccepted)
}

// preflight answers the CORS preflight that fetch sends for a JSON body.
// sendBeacon with text/plain needs none.
func preflight(e *core.RequestEvent) error {
	h := e.Response.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	return e.NoContent(http.StatusNoContent)
}

// hitError maps a parse error to a 400 whose data names the field, like
// PocketBase's record validation errors.
func hitError(e *core.RequestEvent, err error) error {
	var he *hit.Error
	if !errors.As(err, &he) {
		return e.BadRequestError("Invalid hit.", nil)
	}
	if he.Field == "" {
		return e.BadRequestError(he.Message, nil)
	}
	return e.BadRequestError("Invalid hit.", validation.Errors{
		he.Field: validation.NewError("validation_"+he.Code, he.Message),
	})
}

// acceptedMediaType reports whether the Content-Type is one the tracker
// sends: JSON from fetch, text/plain from sendBeacon, or none.
func acceptedMediaType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	return ct == "" || strings.EqualFold(ct, "application/json") || strings.EqualFold(ct, "text/plain")
}

// isLocalhost reports whether a page host is the visitor's own machine.
func isLocalhost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && (ip.IsLoopback() || ip.IsUnspecified())
}
