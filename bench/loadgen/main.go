// Command loadgen drives realistic tracker traffic against a running
// Pocketlytics app (POST /api/collect) and reports accepted hits per second,
// latency percentiles, errors by status and, optionally, how long the
// pipeline took to drain into the analytics store.
//
//	go run ./bench/loadgen -url http://127.0.0.1:8090 -sites SITE_ID=example.com -rate 500 -duration 30s -drain
//
// Visits look like a browser's: a landing pageview with a search, social,
// referral, newsletter or no referrer, more pageviews for most visitors,
// heartbeat pings, a custom event now and then and a leave on exit, from a
// desktop/mobile/tablet mix of user agents and client addresses in many
// countries.
//
// Client addresses travel in X-Forwarded-For. The app believes that header
// only when PocketBase's trusted-proxy setting names it; otherwise every hit
// comes from 127.0.0.1 (one country-less visitor, and the per-IP rate limit
// applies to all of them). Set it once with a superuser token, by hand:
//
//	curl -X PATCH http://127.0.0.1:8090/api/settings -H "Authorization: $TOKEN" \
//	     -H 'Content-Type: application/json' -d '{"trustedProxy":{"headers":["X-Forwarded-For"]}}'
//
// or with -trust-proxy-token $TOKEN, which does the same before the run.
//
// Safety: it sends to loopback addresses only (127.0.0.0/8, ::1, localhost)
// unless -own-host says the target is one of the project's own test hosts,
// and it stops after -duration or -max-hits, whichever comes first.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// quietGC keeps the load tool's own garbage collector out of the latencies
// it measures. Its live heap is about a megabyte, so at Go's default
// (GOGC=100) it collects 15 times a second at 5,000 hits/s, each time
// stopping its senders for up to half a millisecond on a busy two-core
// machine, and those stops land in the percentiles as if the app had been
// slow. At GOGC=2000 it collects about once a second, within a soft limit
// of 512 MiB. GOGC or GOMEMLIMIT in the environment take precedence.
func quietGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(2000)
	debug.SetMemoryLimit(512 << 20)
}

// Hard bounds, whatever the flags say.
const (
	maxDuration = time.Hour
	maxHitsCap  = 10_000_000
)

// droppedHeader is how the collect route marks a 202 it did not record.
const droppedHeader = "X-Pocketlytics-Dropped"

type config struct {
	URL          string
	OwnHost      bool
	Sites        []site
	Rate         float64
	Duration     time.Duration
	MaxHits      int64
	Concurrency  int
	Seed         uint64
	Drain        bool
	DrainTimeout time.Duration
	Lag          bool
	TrustToken   string
	JSON         bool
}

func main() {
	quietGC()
	cfg, err := parseFlags(os.Args[1:], flag.CommandLine.Output())
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if cfg.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.writeText(os.Stdout)
	}
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var cfg config
	var sites, domain string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8090", "base URL of the app")
	fs.BoolVar(&cfg.OwnHost, "own-host", false, "the target is one of the project's own test hosts (allows a non-loopback address)")
	fs.StringVar(&sites, "sites", "", "site ids to send for, comma-separated, each optionally ID=DOMAIN (required)")
	fs.StringVar(&domain, "domain", "example.com", "page domain for sites given without one")
	fs.Float64Var(&cfg.Rate, "rate", 100, "hits per second over all workers; 0 = as fast as the app answers")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send (at most 1h)")
	fs.Int64Var(&cfg.MaxHits, "max-hits", 1_000_000, "stop after this many hits (at most 10M)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "concurrent senders")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the traffic")
	fs.BoolVar(&cfg.Drain, "drain", false, "after sending, poll /api/analytics/health until the queue is drained and report how long it took")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", time.Minute, "give up draining after this long")
	fs.BoolVar(&cfg.Lag, "lag", false, "while sending, sample the age of the oldest event not yet stored (health's oldestPendingMs) every 250ms")
	fs.StringVar(&cfg.TrustToken, "trust-proxy-token", "", "superuser token: first make the app trust X-Forwarded-For")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}

	var err error
	if cfg.Sites, err = parseSites(sites, domain); err != nil {
		return cfg, err
	}
	switch {
	case cfg.Rate < 0:
		return cfg, errors.New("-rate must not be negative")
	case cfg.Duration <= 0 || cfg.Duration > maxDuration:
		return cfg, fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	case cfg.MaxHits <= 0 || cfg.MaxHits > maxHitsCap:
		return cfg, fmt.Errorf("-max-hits must be in [1, %d]", maxHitsCap)
	case cfg.Concurrency <= 0 || cfg.Concurrency > 10_000:
		return cfg, errors.New("-concurrency must be in [1, 10000]")
	case cfg.DrainTimeout <= 0 || cfg.DrainTimeout > maxDuration:
		return cfg, fmt.Errorf("-drain-timeout must be in (0, %s]", maxDuration)
	}
	if err := checkTarget(cfg.URL, cfg.OwnHost); err != nil {
		return cfg, err
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	return cfg, nil
}

// checkTarget refuses anything but a loopback target unless ownHost is set.
func checkTarget(raw string, ownHost bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want http(s)://HOST[:PORT]", raw)
	}
	host := u.Hostname()
	if ownHost || host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q is not a loopback address; pass -own-host only if it is one of the project's own test hosts", raw)
}

// report is the run's outcome.
type report struct {
	Target      string           `json:"target"`
	Duration    float64          `json:"durationSeconds"`
	Sent        int64            `json:"sent"`
	Accepted    int64            `json:"accepted"`
	AcceptedPS  float64          `json:"acceptedPerSecond"`
	Dropped     map[string]int64 `json:"dropped"`  // 202 not recorded, by reason
	Statuses    map[int]int64    `json:"statuses"` // every status seen
	Errors      map[string]int64 `json:"errors"`   // non-202 statuses and transport errors
	LatencyMs   latency          `json:"latencyMs"`
	DrainMs     *float64         `json:"drainMs,omitempty"` // last hit sent → queue empty
	LagMs       *lagReport       `json:"lagMs,omitempty"`   // queue → store lag while sending
	DrainFailed string           `json:"drainFailed,omitempty"`
}

// lagReport summarizes the samples of the oldest unstored event's age: how
// long an event waits between its enqueue and its store insert.
type lagReport struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P95     float64 `json:"p95"`
	Max     float64 `json:"max"`
	Failed  int     `json:"failed"` // health polls that got no answer
}

type latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// recorder collects results from all senders.
type recorder struct {
	mu       sync.Mutex
	samples  []time.Duration
	accepted int64
	dropped  map[string]int64
	statuses map[int]int64
	errors   map[string]int64
}

func (r *recorder) add(d time.Duration, status int, dropped string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errors[transportError(err)]++
		return
	}
	r.samples = append(r.samples, d)
	r.statuses[status]++
	switch {
	case status == http.StatusAccepted && dropped == "":
		r.accepted++
	case status == http.StatusAccepted:
		r.dropped[dropped]++
	default:
		r.errors[fmt.Sprintf("status %d", status)]++
	}
}

func transportError(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return "transport error"
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

// run sends the traffic and, when asked, waits for the drain.
func run(ctx context.Context, cfg config) (*report, error) {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        cfg.Concurrency + 1, // + the health poller
			MaxIdleConnsPerHost: cfg.Concurrency + 1,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	if cfg.TrustToken != "" {
		if err := trustProxy(ctx, client, cfg.URL, cfg.TrustToken); err != nil {
			return nil, err
		}
	}

	rec := &recorder{dropped: map[string]int64{}, statuses: map[int]int64{}, errors: map[string]int64{}}
	var limiter *rate.Limiter
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/100)))
	}

	sendCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var lagDone chan *lagReport
	if cfg.Lag {
		lagDone = make(chan *lagReport, 1)
		go func() { lagDone <- sampleLag(sendCtx, client, cfg.URL) }()
	}
	var sent atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			for sendCtx.Err() == nil {
				for _, h := range visit(r, cfg.Sites) {
					if limiter != nil && limiter.Wait(sendCtx) != nil {
						return
					}
					if sendCtx.Err() != nil || sent.Add(1) > cfg.MaxHits {
						return
					}
					// A hit under way when the time is up still completes
					// (bounded by the client timeout), so what the app got
					// is what the report counts.
					d, status, dropped, err := send(ctx, client, cfg.URL, h)
					if ctx.Err() != nil && err != nil {
						return // interrupted by the user
					}
					rec.add(d, status, dropped, err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lag *lagReport
	if lagDone != nil {
		cancel()
		lag = <-lagDone
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	slices.Sort(rec.samples)
	rep := &report{
		Target:     cfg.URL,
		Duration:   elapsed.Seconds(),
		Sent:       int64(len(rec.samples)) + transportErrors(rec.errors),
		Accepted:   rec.accepted,
		AcceptedPS: float64(rec.accepted) / elapsed.Seconds(),
		Dropped:    rec.dropped,
		Statuses:   rec.statuses,
		Errors:     rec.errors,
		LatencyMs: latency{
			P50: percentile(rec.samples, 0.50), P95: percentile(rec.samples, 0.95),
			P99: percentile(rec.samples, 0.99), Max: percentile(rec.samples, 1),
		},
		LagMs: lag,
	}

	if cfg.Drain {
		d, err := drain(ctx, client, cfg.URL, cfg.DrainTimeout)
		if err != nil {
			rep.DrainFailed = err.Error()
		} else {
			ms := float64(d.Microseconds()) / 1000
			rep.DrainMs = &ms
		}
	}
	return rep, nil
}

// transportErrors counts requests that got no answer at all.
func transportErrors(errs map[string]int64) int64 {
	var n int64
	for k, v := range errs {
		if !strings.HasPrefix(k, "status ") {
			n += v
		}
	}
	return n
}

// send posts one hit as the tracker does (text/plain, like sendBeacon).
func send(ctx context.Context, client *http.Client, base string, h hitReq) (time.Duration, int, string, error) {
	body, err := json.Marshal(h.Payload)
	if err != nil {
		return 0, 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/collect", bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("User-Agent", h.UserAgent)
	req.Header.Set("X-Forwarded-For", h.IP)
	req.Header.Set("Referer", h.Page)
	if u, err := url.Parse(h.Page); err == nil {
		req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	}
	req.Header.Set("Accept-Language", "en-US,en;q=0.9")

	t := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return time.Since(t), res.StatusCode, res.Header.Get(droppedHeader), nil
}

// trustProxy makes the app read client addresses from X-Forwarded-For.
func trustProxy(ctx context.Context, client *http.Client, base, token string) error {
	body := `{"trustedProxy":{"headers":["X-Forwarded-For"],"useLeftmostIP":false}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, base+"/api/settings", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("trust proxy: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("trust proxy: status %d: %s", res.StatusCode, msg)
	}
	return nil
}

// healthState is the part of /api/analytics/health loadgen reads.
type healthState struct {
	QueueLength     int64 `json:"queueLength"`
	Pending         int64 `json:"pending"`
	Spooled         int64 `json:"spooled"`
	OldestPendingMs int64 `json:"oldestPendingMs"`
}

func getHealth(ctx context.Context, client *http.Client, base string) (healthState, error) {
	var h healthState
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/analytics/health", nil)
	if err != nil {
		return h, err
	}
	res, err := client.Do(req)
	if err != nil {
		return h, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return h, fmt.Errorf("health: status %d", res.StatusCode)
	}
	return h, json.NewDecoder(res.Body).Decode(&h)
}

// sampleLag reads the age of the oldest event not yet stored every 250ms
// until ctx ends. An event is acknowledged only after its store insert, so
// the largest age seen is the queue → store lag under this load (to within
// the sampling period).
func sampleLag(ctx context.Context, client *http.Client, base string) *lagReport {
	var samples []float64
	failed := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			slices.Sort(samples)
			r := &lagReport{Samples: len(samples), Failed: failed}
			if n := len(samples); n > 0 {
				r.P50, r.P95, r.Max = samples[(n-1)/2], samples[int(float64(n-1)*0.95)], samples[n-1]
			}
			return r
		case <-tick.C:
		}
		h, err := getHealth(ctx, client, base)
		switch {
		case err == nil:
			samples = append(samples, float64(h.OldestPendingMs))
		case ctx.Err() == nil:
			failed++
		}
	}
}

// drain polls the health endpoint until nothing waits in the queue or the
// spool, and returns how long that took.
func drain(ctx context.Context, client *http.Client, base string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		h, err := getHealth(ctx, client, base)
		if err == nil && h.QueueLength == 0 && h.Pending == 0 && h.Spooled == 0 {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return 0, fmt.Errorf("not drained after %s: %w", timeout, err)
			}
			return 0, fmt.Errorf("not drained after %s: %d queued, %d spooled", timeout, h.QueueLength, h.Spooled)
		case <-tick.C:
		}
	}
}

func (r *report) writeText(w io.Writer) {
	fmt.Fprintf(w, "target      %s\n", r.Target)
	fmt.Fprintf(w, "duration    %.2fs\n", r.Duration)
	fmt.Fprintf(w, "sent        %d\n", r.Sent)
	fmt.Fprintf(w, "accepted    %d (%.1f/s)\n", r.Accepted, r.AcceptedPS)
	fmt.Fprintf(w, "latency ms  p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n",
		r.LatencyMs.P50, r.LatencyMs.P95, r.LatencyMs.P99, r.LatencyMs.Max)
	if r.LagMs != nil {
		fmt.Fprintf(w, "store lag   p50 %.0f  p95 %.0f  max %.0f ms (%d samples, %d failed)\n",
			r.LagMs.P50, r.LagMs.P95, r.LagMs.Max, r.LagMs.Samples, r.LagMs.Failed)
	}
	writeCounts(w, "dropped", r.Dropped)
	writeCounts(w, "errors", r.Errors)
	switch {
	case r.DrainMs != nil:
		fmt.Fprintf(w, "drained     %.0f ms after the last hit\n", *r.DrainMs)
	case r.DrainFailed != "":
		fmt.Fprintf(w, "drain       %s\n", r.DrainFailed)
	}
}

func writeCounts(w io.Writer, label string, m map[string]int64) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	fmt.Fprintf(w, "%-11s %s\n", label, strings.Join(parts, " "))
}
