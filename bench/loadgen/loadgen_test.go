package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/hit"
)

func TestCheckTarget(t *testing.T) {
	for _, tc := range []struct {
		url     string
		ownHost bool
		ok      bool
	}{
		{"http://127.0.0.1:8090", false, true},
		{"http://127.5.6.7:8090", false, true},
		{"http://localhost:8090", false, true},
		{"http://[::1]:8090", false, true},
		{"http://10.0.0.5:8090", false, false},
		{"http://192.168.1.2", false, false},
		{"https://example.com", false, false},
		{"http://testhost.internal:8090", true, true},
		{"ftp://127.0.0.1", false, false},
		{"127.0.0.1:8090", false, false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			if err := checkTarget(tc.url, tc.ownHost); (err == nil) != tc.ok {
				t.Fatalf("checkTarget(%q, %v) = %v, want ok=%v", tc.url, tc.ownHost, err, tc.ok)
			}
		})
	}
}

func TestParseFlagsBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", []string{"-sites", "abc"}, true},
		{"no site", nil, false},
		{"too long", []string{"-sites", "abc", "-duration", "2h"}, false},
		{"too many hits", []string{"-sites", "abc", "-max-hits", "20000000"}, false},
		{"negative rate", []string{"-sites", "abc", "-rate", "-1"}, false},
		{"remote target", []string{"-sites", "abc", "-url", "http://203.0.113.9"}, false},
		{"bad domain", []string{"-sites", "abc=exa mple.com"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if (err == nil) != tc.ok {
				t.Fatalf("parseFlags(%v) = %v, want ok=%v", tc.args, err, tc.ok)
			}
		})
	}
}

// TestTrafficIsRealistic checks that generated visits are valid hits and
// cover the mix the tool promises.
func TestTrafficIsRealistic(t *testing.T) {
	sites := []site{{"site00000000001", "example.com"}, {"site00000000002", "shop.example"}}
	r := rand.New(rand.NewPCG(1, 2))
	types := map[string]int{}
	devicesSeen := map[string]bool{}
	refs := map[string]int{}
	ips := map[string]bool{}
	for range 2000 {
		hits := visit(r, sites)
		if len(hits) == 0 || hits[0].Payload.Type != event.Pageview {
			t.Fatalf("a visit must start with a pageview: %+v", hits)
		}
		for _, h := range hits {
			p := h.Payload
			if !event.ValidType(p.Type) || p.Width <= 0 {
				t.Fatalf("invalid hit %+v", p)
			}
			// What send posts is what the collect route accepts.
			if b, err := json.Marshal(p); err != nil {
				t.Fatal(err)
			} else if _, err := hit.Parse(b); err != nil {
				t.Fatalf("collect would refuse %s: %v", b, err)
			}
			u, err := url.Parse(p.URL)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"site00000000001": "example.com", "site00000000002": "shop.example"}[p.Site]; u.Host != want {
				t.Fatalf("hit for %s on host %s", p.Site, u.Host)
			}
			a, err := netip.ParseAddr(h.IP)
			if err != nil || a.IsLoopback() || a.IsPrivate() {
				t.Fatalf("client address %q", h.IP)
			}
			types[p.Type]++
			ips[h.IP] = true
			for _, d := range devices {
				if d.v.ua == h.UserAgent {
					devicesSeen[d.v.kind] = true
				}
			}
			switch {
			case p.Type != event.Pageview:
			case strings.Contains(p.Referrer, "google") || strings.Contains(p.Referrer, "bing"):
				refs["search"]++
			case strings.Contains(p.Referrer, "t.co") || strings.Contains(p.Referrer, "reddit"):
				refs["social"]++
			case strings.Contains(p.URL, "utm_source="):
				refs["email"]++
			case p.Referrer == "":
				refs["direct"]++
			}
		}
	}
	for _, typ := range []string{event.Pageview, event.Ping, event.Custom, event.Leave} {
		if types[typ] == 0 {
			t.Errorf("no %s hits generated", typ)
		}
	}
	for _, k := range []string{"desktop", "mobile", "tablet"} {
		if !devicesSeen[k] {
			t.Errorf("no %s user agent generated", k)
		}
	}
	for _, k := range []string{"search", "social", "email", "direct"} {
		if refs[k] == 0 {
			t.Errorf("no %s referrer generated", k)
		}
	}
	if len(ips) < 1000 {
		t.Errorf("only %d distinct client addresses", len(ips))
	}
}

// collector is a loopback server that records what loadgen sends, answers
// like the collect route, and reports a draining queue on health.
type collector struct {
	hits     atomic.Int64
	mu       sync.Mutex
	badHits  []string
	forwards map[string]bool
	queued   atomic.Int64
	oldestMs atomic.Int64 // health's oldestPendingMs
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/collect":
		n := c.hits.Add(1)
		var p hit.Body
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err != nil || r.Header.Get("User-Agent") == "" ||
			r.Header.Get("X-Forwarded-For") == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			c.mu.Lock()
			c.badHits = append(c.badHits, string(body))
			c.mu.Unlock()
		}
		c.mu.Lock()
		c.forwards[r.Header.Get("X-Forwarded-For")] = true
		c.mu.Unlock()
		switch {
		case n%10 == 0:
			w.Header().Set(droppedHeader, "bot")
			w.WriteHeader(http.StatusAccepted)
		case n%25 == 1:
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			c.queued.Add(1)
			w.WriteHeader(http.StatusAccepted)
		}
	case "/api/analytics/health":
		// The "flusher" takes up to 50 entries per poll.
		left := max(0, c.queued.Add(-50))
		c.queued.Store(left)
		json.NewEncoder(w).Encode(map[string]any{"queueLength": left, "pending": 0, "spooled": 0, "oldestPendingMs": c.oldestMs.Load()})
	default:
		http.NotFound(w, r)
	}
}

func TestRunReportsWhatTheServerSaw(t *testing.T) {
	c := &collector{forwards: map[string]bool{}}
	srv := httptest.NewServer(c)
	defer srv.Close()

	cfg, err := parseFlags([]string{
		"-url", srv.URL, "-sites", "s1,s2=shop.example", "-rate", "0",
		"-duration", "20s", "-max-hits", "300", "-concurrency", "8", "-drain",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	if got := c.hits.Load(); got != 300 || rep.Sent != 300 {
		t.Fatalf("server saw %d hits, report says %d sent; want exactly -max-hits=300", got, rep.Sent)
	}
	if len(c.badHits) > 0 {
		t.Fatalf("malformed requests: %q", c.badHits[:min(3, len(c.badHits))])
	}
	if len(c.forwards) < 25 { // about 6 hits per visit
		t.Errorf("only %d distinct X-Forwarded-For addresses", len(c.forwards))
	}
	if rep.Dropped["bot"] != 30 || rep.Errors["status 429"] != 12 || rep.Accepted != 300-30-12 {
		t.Errorf("report %+v: want 30 dropped as bot, 12 × 429, 258 accepted", rep)
	}
	if rep.Statuses[http.StatusAccepted] != 288 || rep.LatencyMs.P50 <= 0 || rep.LatencyMs.P99 < rep.LatencyMs.P50 {
		t.Errorf("statuses %v, latency %+v", rep.Statuses, rep.LatencyMs)
	}
	if rep.DrainMs == nil {
		t.Errorf("drain not reported: %q", rep.DrainFailed)
	}

	var text strings.Builder
	rep.writeText(&text)
	for _, want := range []string{"accepted    258", "errors      status 429=12", "dropped     bot=30", "drained"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestRunHoldsTheRate(t *testing.T) {
	c := &collector{forwards: map[string]bool{}}
	srv := httptest.NewServer(c)
	defer srv.Close()

	cfg, err := parseFlags([]string{
		"-url", srv.URL, "-sites", "s1", "-rate", "200", "-duration", "500ms", "-concurrency", "4",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("run took %s for -duration 500ms", time.Since(start))
	}
	// 200/s for 0.5s plus the initial burst (2): never more than that.
	if rep.Sent > 103 || rep.Sent == 0 {
		t.Fatalf("sent %d hits at -rate 200 for 500ms", rep.Sent)
	}
}

func TestRunSamplesLag(t *testing.T) {
	c := &collector{forwards: map[string]bool{}}
	c.oldestMs.Store(1234)
	srv := httptest.NewServer(c)
	defer srv.Close()

	cfg, err := parseFlags([]string{
		"-url", srv.URL, "-sites", "s1", "-rate", "100", "-duration", "1200ms", "-concurrency", "2", "-lag",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	lag := rep.LagMs
	if lag == nil || lag.Samples < 2 || lag.Failed != 0 {
		t.Fatalf("lag report %+v: want a sample every 250ms over 1.2s", lag)
	}
	if lag.P50 != 1234 || lag.Max != 1234 {
		t.Errorf("lag report %+v: want 1234 ms, the age health reported", lag)
	}
	var text strings.Builder
	rep.writeText(&text)
	if !strings.Contains(text.String(), "store lag   p50 1234") {
		t.Errorf("text report lacks the lag:\n%s", text.String())
	}
}
