package hooks

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pocketlytics/pocketlytics/internal/metrics"
	"github.com/pocketlytics/pocketlytics/internal/queue"
	"github.com/pocketlytics/pocketlytics/internal/queue/spool"
)

// Deployment modes shown by the health endpoint.
const (
	ModeEmbedded = "embedded"
	ModeRedis    = "redis"
)

// OpsConfig wires the parts the operations endpoints report on. Queue and
// Store are required; the rest may be nil when the deployment has no such part.
type OpsConfig struct {
	// Mode is ModeEmbedded (local queue) or ModeRedis (Redis Streams);
	// default ModeEmbedded.
	Mode string

	// Queue is the queue the flusher consumes (localq or redisq).
	Queue interface {
		Stats(ctx context.Context) (queue.Stats, error)
	}

	// Store is the analytics store (store.Store satisfies it).
	Store interface {
		Ping(ctx context.Context) error
		Kind() string
	}

	// Redis is pinged for "redisReachable" (redisq.Queue satisfies it).
	Redis interface {
		Ping(ctx context.Context) error
	}

	// Spool reports the Redis-outage spool (*spool.Spool satisfies it).
	Spool interface {
		Stats(ctx context.Context) (spool.Stats, error)
	}

	// LastFlush returns when the flusher last wrote a batch; zero: never.
	LastFlush func() time.Time

	// MetricsPath is the Prometheus endpoint (default "/metrics").
	MetricsPath string

	// GeoIP names the location database in use ("embedded", "file",
	// "downloaded", "downloading" or "none"; optional). "none" is a problem:
	// every visitor's location is unknown.
	GeoIP func() string

	// MetricsToken lets a scraper read /metrics with
	// "Authorization: Bearer TOKEN". Empty: superusers only.
	MetricsToken string

	// Timeout bounds each check of the health endpoint (default 1s); the
	// checks run concurrently.
	Timeout time.Duration
}

// ingestStateKey holds the ingest route's *ingestState in app.Store(),
// shared by the collect and ops hooks of one app.
const ingestStateKey = "pocketlytics.ingestState"

// ingestFailureShown is how long a refused hit keeps health "failing"
// without a hit stored since: a quiet instance is shown as it last was,
// then as ok again, so a balancer that took it out tries it again.
const ingestFailureShown = time.Minute

// ingestState is whether the ingest route could queue its last hit.
type ingestState struct {
	failedAt atomic.Int64 // unix nanoseconds of the last refused hit; 0: the last was queued
	err      atomic.Pointer[string]
}

func ingestStateOf(app core.App) *ingestState {
	return app.Store().GetOrSet(ingestStateKey, func() any { return &ingestState{} }).(*ingestState)
}

func (s *ingestState) failed(err error) {
	msg := err.Error()
	s.err.Store(&msg)
	s.failedAt.Store(time.Now().UnixNano())
}

// queued notes a queued hit; a load first, as this runs on every hit.
func (s *ingestState) queued() {
	if s.failedAt.Load() != 0 {
		s.failedAt.Store(0)
	}
}

// failing returns why the last hit was refused, if it was, recently.
func (s *ingestState) failing() (string, bool) {
	at := s.failedAt.Load()
	if at == 0 || time.Since(time.Unix(0, at)) > ingestFailureShown {
		return "", false
	}
	if msg := s.err.Load(); msg != nil {
		return *msg, true
	}
	return "", true
}

// Health is the body of GET /api/analytics/health.
type Health struct {
	// Status is "ok", "degraded" when a part listed in Problems fails
	// while ingest keeps accepting hits (they wait in the queue or the
	// spool; the endpoint answers 200: alert on it, keep the instance in
	// the load balancer), or "failing" when ingest refuses hits (a full
	// disk; the endpoint answers 503).
	Status   string   `json:"status"`
	Problems []string `json:"problems"`

	// IngestError is why the last hit was refused, while Status is "failing".
	IngestError string `json:"ingestError,omitempty"`

	Mode           string `json:"mode"`
	Store          string `json:"store"`
	StoreReachable bool   `json:"storeReachable"`
	RedisReachable *bool  `json:"redisReachable"` // null without Redis

	// QueueLength and Pending count queue entries: a hit each in the
	// embedded queue, the hits of one group commit each in Redis.
	QueueLength     int64 `json:"queueLength"`
	Pending         int64 `json:"pending"`
	OldestPendingMs int64 `json:"oldestPendingMs"`
	DeadLetters     int64 `json:"deadLetters"`

	Spooled      int64 `json:"spooled"`
	SpoolHealthy *bool `json:"spoolHealthy"` // null without a spool

	LastFlush *time.Time `json:"lastFlush"` // null before the first flush

	GeoIP string `json:"geoip,omitempty"` // see OpsConfig.GeoIP
}

// RegisterOps binds GET /api/analytics/health (public, for monitors and the
// load tool) and GET /metrics (Prometheus text format, for superusers or a
// bearer token). Both skip the request log: they are polled all the time.
func RegisterOps(app core.App, cfg OpsConfig) error {
	if cfg.Queue == nil || cfg.Store == nil {
		return errors.New("hooks: OpsConfig needs a Queue and a Store")
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeEmbedded
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.MetricsPath == "" {
		cfg.MetricsPath = "/metrics"
	}
	ops := &opsHandlers{cfg: cfg, ingest: ingestStateOf(app), metrics: promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{})}
	if cfg.MetricsToken != "" {
		sum := sha256.Sum256([]byte(cfg.MetricsToken))
		ops.tokenHash = sum[:]
	}

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET("/api/analytics/health", ops.health).
			Unbind(apis.DefaultActivityLoggerMiddlewareId)
		se.Router.GET(cfg.MetricsPath, ops.serveMetrics).
			Unbind(apis.DefaultActivityLoggerMiddlewareId)
		return se.Next()
	})
	return nil
}

type opsHandlers struct {
	cfg       OpsConfig
	ingest    *ingestState
	metrics   http.Handler
	tokenHash []byte // sha256 of the metrics token; nil: no token
}

func (o *opsHandlers) health(e *core.RequestEvent) error {
	h := o.check(e.Request.Context())
	if msg, failing := o.ingest.failing(); failing {
		h.Status, h.IngestError = "failing", msg
		h.Problems = append(h.Problems, "ingest")
		slices.Sort(h.Problems)
		return e.JSON(http.StatusServiceUnavailable, h)
	}
	return e.JSON(http.StatusOK, h)
}

// check runs every probe concurrently, each bounded by the timeout.
func (o *opsHandlers) check(parent context.Context) Health {
	h := Health{Mode: o.cfg.Mode, Store: o.cfg.Store.Kind(), Problems: []string{}}
	var mu sync.Mutex
	problem := func(name string) {
		mu.Lock()
		h.Problems = append(h.Problems, name)
		mu.Unlock()
	}

	var wg sync.WaitGroup
	probe := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(parent, o.cfg.Timeout)
			defer cancel()
			f(ctx)
		}()
	}

	probe(func(ctx context.Context) {
		ok := o.cfg.Store.Ping(ctx) == nil
		if !ok {
			problem("store")
		}
		mu.Lock()
		h.StoreReachable = ok
		mu.Unlock()
	})
	probe(func(ctx context.Context) {
		st, err := o.cfg.Queue.Stats(ctx)
		if err != nil {
			problem("queue")
			return
		}
		mu.Lock()
		h.QueueLength, h.Pending, h.DeadLetters = st.Length, st.Pending, st.DeadLetters
		h.OldestPendingMs = st.OldestPending.Milliseconds()
		mu.Unlock()
		metrics.QueueDepth.Set(float64(st.Length))
	})
	if o.cfg.Redis != nil {
		probe(func(ctx context.Context) {
			ok := o.cfg.Redis.Ping(ctx) == nil
			if !ok {
				problem("redis")
			}
			mu.Lock()
			h.RedisReachable = &ok
			mu.Unlock()
		})
	}
	if o.cfg.Spool != nil {
		probe(func(ctx context.Context) {
			st, err := o.cfg.Spool.Stats(ctx)
			if err != nil {
				problem("spool")
				return
			}
			if !st.Healthy || st.Spooled > 0 {
				problem("spooling")
			}
			mu.Lock()
			h.Spooled, h.SpoolHealthy = st.Spooled, &st.Healthy
			mu.Unlock()
		})
	}
	if o.cfg.LastFlush != nil {
		if t := o.cfg.LastFlush(); !t.IsZero() {
			t = t.UTC()
			h.LastFlush = &t
		}
	}
	if o.cfg.GeoIP != nil {
		if h.GeoIP = o.cfg.GeoIP(); h.GeoIP == "none" {
			problem("geoip")
		}
	}
	wg.Wait()

	slices.Sort(h.Problems)
	h.Status = "ok"
	if len(h.Problems) > 0 {
		h.Status = "degraded"
	}
	return h
}

// serveMetrics serves the registry to superusers and to holders of the
// metrics token, refreshing the queue depth first.
func (o *opsHandlers) serveMetrics(e *core.RequestEvent) error {
	if !e.HasSuperuserAuth() && !o.validToken(e.Request.Header.Get("Authorization")) {
		if e.Auth != nil {
			return e.ForbiddenError("Only superusers and the metrics token may read metrics.", nil)
		}
		return e.UnauthorizedError("Metrics require a superuser token or the metrics token.", nil)
	}

	ctx, cancel := context.WithTimeout(e.Request.Context(), o.cfg.Timeout)
	if st, err := o.cfg.Queue.Stats(ctx); err == nil {
		metrics.QueueDepth.Set(float64(st.Length))
	}
	cancel()

	o.metrics.ServeHTTP(e.Response, e.Request)
	return nil
}

// validToken compares "Bearer TOKEN" with the metrics token in constant time
// (over hashes, so the length does not leak either).
func (o *opsHandlers) validToken(header string) bool {
	if o.tokenHash == nil {
		return false
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], o.tokenHash) == 1
}
