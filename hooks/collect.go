package hooks

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pocketlytics/pocketlytics/internal/enrich"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/hit"
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
	// queues here do (the spool gives Redis 500 ms, then writes to disk),
	// which spares a context deadline per hit.
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
		cfg:     cfg,
		limiter: ratelimit.New(ratelimit.Options{Rate: cfg.RateLimit}),
		refused: map[string]prometheus.Counter{},
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
}

// eventPool recycles the slices that hand an event to the queue, which keeps
// none of them after Enqueue returns (queue.Producer).
var eventPool = sync.Pool{New: func() any { return new([1]event.Event) }}

// bodyPool recycles the read buffers: one more byte than allowed, to tell
// "exactly the limit" from "too large".
var bodyPool = sync.Pool{New: func() any { b := make([]byte, hit.MaxBodySize+1); return &b }}

// Header values every answer of the ingest route shares. They are assigned,
// not Set: net/http copies the header map when the answer is written and
// never changes its values, and a hit then allocates no value slices.
var (
	anyOrigin      = []string{"*"}
	exposedHeaders = []string{DroppedHeader}
	// securityHeaders are those of PocketBase's securityHeaders middleware,
	// which the route skips: they matter for an answer with a body, an
	// error's JSON, not for the 202 without one that nearly every hit gets.
	securityHeaders = [...]struct {
		name  string
		value []string
	}{
		{"X-Xss-Protection", []string{"1; mode=block"}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"SAMEORIGIN"}},
		{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
	}
)

func (c *collector) collect(e *core.RequestEvent) error {
	h := e.Response.Header()
	h["Access-Control-Allow-Origin"] = anyOrigin
	h["Access-Control-Expose-Headers"] = exposedHeaders
	err := c.accept(e, h)
	if err != nil {
		for _, sh := range securityHeaders {
			h[sh.name] = sh.value
		}
	}
	return err
}

// accept answers a hit 202 once it is queued (or dropped, naming the reason
// in DroppedHeader), or returns why it was refused.
func (c *collector) accept(e *core.RequestEvent, h http.Header) error {
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

	if e.Request.ContentLength > hit.MaxBodySize {
		c.refused[reasonTooLarge].Inc()
		return e.Error(http.StatusRequestEntityTooLarge, "The hit is larger than 8 KiB.", nil)
	}
	bufp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bufp)
	n, err := readFull(rawBody(e.Request), *bufp)
	if err != nil {
		c.refused[reasonBadRequest].Inc()
		return e.BadRequestError("Failed to read the request body.", nil)
	}
	if n > hit.MaxBodySize {
		c.refused[reasonTooLarge].Inc()
		return e.Error(http.StatusRequestEntityTooLarge, "The hit is larger than 8 KiB.", nil)
	}

	p, err := hit.Parse((*bufp)[:n])
	if err != nil {
		c.refused[reasonBadRequest].Inc()
		return hitError(e, err)
	}

	site, ok := c.cfg.Sites.Get(p.Site)
	if !ok {
		c.refused[reasonUnknownSite].Inc()
		return e.BadRequestError("Unknown site.", validation.Errors{
			"site": validation.NewError("validation_unknown_site", "No site has this id."),
		})
	}

	host := p.Host
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

	addr, _ := netip.ParseAddr(ip)
	in := inputPool.Get().(*enrich.Input)
	*in = enrich.Input{
		Hit:       p,
		Site:      site,
		IP:        addr,
		UserAgent: e.Request.UserAgent(),
		Header:    e.Request.Header,
		Now:       time.Now(),
	}
	ev, drop := c.cfg.Enricher.Run(in)
	*in = enrich.Input{}
	inputPool.Put(in)
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

	// A pooled one-event slice: the variadic slice of an interface call
	// would be allocated for every hit (the event is about 400 bytes). And
	// not the request's context, whose Done channel is made on first use:
	// Enqueue bounds its own wait, and a hit whose sender went away in the
	// meantime is still worth keeping.
	evs := eventPool.Get().(*[1]event.Event)
	evs[0] = ev
	err = c.cfg.Queue.Enqueue(context.Background(), evs[:]...)
	evs[0] = event.Event{}
	eventPool.Put(evs)
	if ev.Pending != nil {
		// The session lookup that rode along with the queue's write, or
		// the queue's fallback when it could not (event.Pending).
		ev.Pending.Finish(&ev)
	}
	if err != nil {
		c.refused[reasonNotQueued].Inc()
		e.App.Logger().Warn("Failed to queue a hit", "error", err)
		return e.Error(http.StatusServiceUnavailable, "The hit was not queued, try again later.", nil)
	}

	metrics.HitsAccepted.Inc()
	if c.cfg.Live != nil {
		c.cfg.Live.Publish(ev)
	}
	return e.NoContent(http.StatusAccepted)
}

// inputPool holds the hits' enrich.Inputs: Run keeps its input in pooled
// state, so a fresh one would be allocated on the heap for every hit (about
// 350 bytes; Run keeps nothing of it once it returns).
var inputPool = sync.Pool{New: func() any { return new(enrich.Input) }}

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

// rawBody is the request's body without PocketBase's rereadable wrapper,
// which copies what is read into a buffer of its own: nothing reads a hit
// twice, and the copy cost two allocations per hit.
func rawBody(r *http.Request) io.Reader {
	if rr, ok := r.Body.(*router.RereadableReadCloser); ok {
		return rr.ReadCloser
	}
	return r.Body
}

// readFull reads until buf is full or the body ends; unlike io.ReadFull a
// short body is not an error.
func readFull(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}
