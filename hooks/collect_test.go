package hooks_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketbase/pocketbase/tools/logger"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
)

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func pageview(site, url string) string {
	return `{"site":"` + site + `","type":"pageview","url":"` + url + `","referrer":"https://duckduckgo.com/","title":"Home","w":1280}`
}

func TestCollect(t *testing.T) {
	valid := pageview(siteID, "https://example.com/pricing?utm_source=x")

	type check func(t testing.TB, f *fixture, res *http.Response)
	queued := func(n int) check {
		return func(t testing.TB, f *fixture, res *http.Response) {
			if got := len(f.events(t)); got != n {
				t.Fatalf("%d events queued, want %d", got, n)
			}
			if got := f.live.len(); got != n {
				t.Fatalf("%d events published live, want %d", got, n)
			}
		}
	}
	header := func(name, want string) check {
		return func(t testing.TB, f *fixture, res *http.Response) {
			if got := res.Header.Get(name); got != want {
				t.Fatalf("header %s = %q, want %q", name, got, want)
			}
		}
	}

	scenarios := []struct {
		name    string
		opts    fixtureOptions
		method  string
		body    io.Reader
		headers map[string]string
		status  int
		content []string
		checks  []check
	}{
		{
			name:   "pageview as json",
			body:   strings.NewReader(valid),
			status: http.StatusAccepted,
			checks: []check{queued(1), header("Access-Control-Allow-Origin", "*"), header(hooks.DroppedHeader, ""),
				header("Access-Control-Expose-Headers", hooks.DroppedHeader),
				header("X-Content-Type-Options", ""), // no body to protect
				func(t testing.TB, f *fixture, res *http.Response) {
					ev := f.events(t)[0]
					if ev.ID == "" || ev.SiteID != siteID || ev.Type != "pageview" || ev.Hostname != "example.com" || ev.Pathname != "/pricing" ||
						ev.ReferrerHost != "duckduckgo.com" || ev.UTMSource != "x" || ev.Browser == "" || ev.ScreenWidth != 1280 || ev.VisitorID == 0 {
						t.Fatalf("queued %+v", ev)
					}
				}},
		},
		{
			name:    "pageview as text/plain (sendBeacon)",
			body:    strings.NewReader(valid),
			headers: map[string]string{"Content-Type": "text/plain;charset=UTF-8"},
			status:  http.StatusAccepted,
			checks:  []check{queued(1)},
		},
		{
			name:   "custom event",
			body:   strings.NewReader(`{"site":"` + siteID + `","type":"event","url":"https://example.com/","name":"Signup","props":{"plan":"pro","seats":3}}`),
			status: http.StatusAccepted,
			checks: []check{queued(1), func(t testing.TB, f *fixture, res *http.Response) {
				ev := f.events(t)[0]
				if ev.Name != "Signup" || ev.Props["plan"] != "pro" || ev.Props["seats"] != "3" {
					t.Fatalf("queued %+v", ev)
				}
			}},
		},
		{
			name:   "www host of a bare domain",
			body:   strings.NewReader(pageview(siteID, "https://www.example.com/")),
			status: http.StatusAccepted,
			checks: []check{queued(1)},
		},
		{
			name:   "subdomain of a site allowing them",
			body:   strings.NewReader(pageview(subsSiteID, "https://eu.shop.example/cart")),
			status: http.StatusAccepted,
			checks: []check{queued(1)},
		},
		{
			name:   "body of exactly 8 KiB",
			body:   strings.NewReader(valid + strings.Repeat(" ", hit.MaxBodySize-len(valid))),
			status: http.StatusAccepted,
			checks: []check{queued(1)},
		},
		{
			name:    "bot",
			body:    strings.NewReader(valid),
			headers: map[string]string{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
			status:  http.StatusAccepted,
			checks:  []check{queued(0), header(hooks.DroppedHeader, "bot")},
		},
		{
			name:    "headless browser",
			body:    strings.NewReader(valid),
			headers: map[string]string{"User-Agent": strings.Replace(chromeUA, "Chrome/", "HeadlessChrome/", 1)},
			status:  http.StatusAccepted,
			checks:  []check{queued(0), header(hooks.DroppedHeader, "headless")},
		},
		{
			name:    "no user agent",
			body:    strings.NewReader(valid),
			headers: map[string]string{"User-Agent": ""},
			status:  http.StatusAccepted,
			checks:  []check{queued(0), header(hooks.DroppedHeader, "bot")},
		},
		{
			name:    "malformed json",
			body:    strings.NewReader(`{"site":"` + siteID + `","type":`),
			status:  http.StatusBadRequest,
			content: []string{`"status":400`, `"message":"The body is not valid JSON`},
			checks: []check{queued(0), header("Access-Control-Allow-Origin", "*"),
				// PocketBase's security headers, which the route sets on errors
				header("X-Content-Type-Options", "nosniff"), header("X-Frame-Options", "SAMEORIGIN"),
				header("X-XSS-Protection", "1; mode=block"), header("Cross-Origin-Opener-Policy", "same-origin")},
		},
		{
			name:    "empty body",
			body:    strings.NewReader(``),
			status:  http.StatusBadRequest,
			content: []string{`"message":"The body is empty`},
		},
		{
			name:    "missing site",
			body:    strings.NewReader(`{"type":"pageview","url":"https://example.com/"}`),
			status:  http.StatusBadRequest,
			content: []string{`"data":{"site":{"code":"validation_required"`},
		},
		{
			name:    "unknown site",
			body:    strings.NewReader(pageview(noSiteID, "https://example.com/")),
			status:  http.StatusBadRequest,
			content: []string{`"data":{"site":{"code":"validation_unknown_site"`},
			checks:  []check{queued(0)},
		},
		{
			name:    "host not in the site's domains",
			body:    strings.NewReader(pageview(siteID, "https://evil.example.org/")),
			status:  http.StatusForbidden,
			content: []string{`"data":{"url":{"code":"validation_host_not_allowed"`},
			checks:  []check{queued(0)},
		},
		{
			name:    "subdomain of a site not allowing them",
			body:    strings.NewReader(pageview(siteID, "https://blog.example.com/")),
			status:  http.StatusForbidden,
			content: []string{`"validation_host_not_allowed"`},
		},
		{
			name:    "localhost refused",
			body:    strings.NewReader(pageview(siteID, "http://localhost:3000/")),
			status:  http.StatusForbidden,
			content: []string{`"data":{"url":{"code":"validation_localhost"`},
			checks:  []check{queued(0)},
		},
		{
			name:    "loopback IPv6 refused",
			body:    strings.NewReader(pageview(siteID, "http://[::1]:8080/")),
			status:  http.StatusForbidden,
			content: []string{`"validation_localhost"`},
		},
		{
			name:    "127.0.0.1 refused",
			body:    strings.NewReader(pageview(siteID, "http://127.0.0.1/")),
			status:  http.StatusForbidden,
			content: []string{`"validation_localhost"`},
		},
		{
			name:   "localhost accepted with TrackLocalhost",
			opts:   fixtureOptions{trackLocalhost: true},
			body:   strings.NewReader(pageview(siteID, "http://localhost:3000/")),
			status: http.StatusAccepted,
			checks: []check{queued(1)},
		},
		{
			name:    "unknown type",
			body:    strings.NewReader(`{"site":"` + siteID + `","type":"click","url":"https://example.com/"}`),
			status:  http.StatusBadRequest,
			content: []string{`"data":{"type":{"code":"validation_invalid"`},
		},
		{
			name:    "prop object",
			body:    strings.NewReader(`{"site":"` + siteID + `","type":"event","url":"https://example.com/","name":"x","props":{"a":{}}}`),
			status:  http.StatusBadRequest,
			content: []string{`"data":{"props":{"code":"validation_invalid_type"`},
		},
		{
			name:    "scroll depth out of range",
			body:    strings.NewReader(`{"site":"` + siteID + `","type":"leave","url":"https://example.com/","e":1200,"s":101}`),
			status:  http.StatusBadRequest,
			content: []string{`"data":{"s":{"code":"validation_out_of_range"`, `"message":"Invalid hit."`},
			checks:  []check{queued(0)},
		},
		{
			name:    "engaged time on a pageview",
			body:    strings.NewReader(`{"site":"` + siteID + `","type":"pageview","url":"https://example.com/","e":1200}`),
			status:  http.StatusBadRequest,
			content: []string{`"data":{"e":{"code":"validation_invalid"`},
			checks:  []check{queued(0)},
		},
		{
			name:    "oversize body with content length",
			body:    strings.NewReader(valid + strings.Repeat(" ", hit.MaxBodySize+1-len(valid))),
			status:  http.StatusRequestEntityTooLarge,
			content: []string{`"status":413`},
			checks:  []check{queued(0)},
		},
		{
			name:    "oversize streamed body",
			body:    io.MultiReader(strings.NewReader(valid), strings.NewReader(strings.Repeat(" ", 1<<20))),
			status:  http.StatusRequestEntityTooLarge,
			content: []string{`"status":413`},
		},
		{
			name:    "form post",
			body:    strings.NewReader("site=" + siteID),
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			status:  http.StatusUnsupportedMediaType,
			content: []string{`"status":415`},
		},
		{
			name:    "queue failure",
			opts:    fixtureOptions{queueClosed: true},
			body:    strings.NewReader(valid),
			status:  http.StatusServiceUnavailable,
			content: []string{`"message":"The hit was not queued, try again later."`},
			checks: []check{func(t testing.TB, f *fixture, res *http.Response) {
				if n := f.live.len(); n != 0 {
					t.Fatalf("%d events published live for a hit that was not queued", n)
				}
			}},
		},
	}

	for _, s := range scenarios {
		var f *fixture
		method := s.method
		if method == "" {
			method = http.MethodPost
		}
		headers := map[string]string{"User-Agent": chromeUA}
		for k, v := range s.headers {
			headers[k] = v
		}
		sc := tests.ApiScenario{
			Name:            s.name,
			Method:          method,
			URL:             hooks.CollectPath,
			Body:            s.body,
			Headers:         headers,
			ExpectedStatus:  s.status,
			ExpectedContent: s.content,
			TestAppFactory: func(t testing.TB) *tests.TestApp {
				f = newFixture(t, s.opts)
				return f.app
			},
			AfterTestFunc: func(t testing.TB, app *tests.TestApp, res *http.Response) {
				for _, c := range s.checks {
					c(t, f, res)
				}
			},
		}
		sc.Test(t)
	}
}

func TestCollectMetrics(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	defer f.app.Cleanup()
	mux := serveMux(t, f.app)

	accepted := counterValue(t, metrics.HitsAccepted)
	unknown := counterValue(t, metrics.HitsDropped.WithLabelValues("unknown_site"))
	bots := counterValue(t, metrics.HitsDropped.WithLabelValues("bot"))

	post(mux, pageview(siteID, "https://example.com/"), chromeUA)
	post(mux, pageview(noSiteID, "https://example.com/"), chromeUA)
	post(mux, pageview(siteID, "https://example.com/"), "Googlebot/2.1")

	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"accepted", counterValue(t, metrics.HitsAccepted), accepted + 1},
		{"unknown_site", counterValue(t, metrics.HitsDropped.WithLabelValues("unknown_site")), unknown + 1},
		{"bot", counterValue(t, metrics.HitsDropped.WithLabelValues("bot")), bots + 1},
	} {
		if c.got != c.want {
			t.Errorf("%s counter = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestCollectRateLimit(t *testing.T) {
	// Rate 1/s allows a burst of 2 per address.
	var f *fixture
	sc := tests.ApiScenario{
		Name:           "third hit in a burst of two",
		Method:         http.MethodPost,
		URL:            hooks.CollectPath,
		Body:           strings.NewReader(pageview(siteID, "https://example.com/")),
		Headers:        map[string]string{"User-Agent": chromeUA},
		ExpectedStatus: http.StatusTooManyRequests,
		ExpectedContent: []string{
			`"status":429`,
		},
		TestAppFactory: func(t testing.TB) *tests.TestApp {
			f = newFixture(t, fixtureOptions{rateLimit: 1})
			return f.app
		},
		BeforeTestFunc: func(t testing.TB, app *tests.TestApp, e *core.ServeEvent) {
			mux, err := e.Router.BuildMux()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if rec := post(mux, pageview(siteID, "https://example.com/"), chromeUA); rec.Code != http.StatusAccepted {
					t.Fatalf("hit %d: status %d, want 202", i+1, rec.Code)
				}
			}
			// Another address has its own bucket.
			req := collectRequest(pageview(siteID, "https://example.com/"), chromeUA)
			req.RemoteAddr = "198.51.100.7:4242"
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("other address: status %d, want 202", rec.Code)
			}
		},
		AfterTestFunc: func(t testing.TB, app *tests.TestApp, res *http.Response) {
			if res.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After header")
			}
			if n := len(f.events(t)); n != 3 {
				t.Fatalf("%d events queued, want 3", n)
			}
		},
	}
	sc.Test(t)
}

func TestCollectPreflight(t *testing.T) {
	scenarios := []tests.ApiScenario{
		{
			Name:   "preflight",
			Method: http.MethodOptions,
			URL:    hooks.CollectPath,
			Headers: map[string]string{
				"Origin":                         "https://example.com",
				"Access-Control-Request-Method":  "POST",
				"Access-Control-Request-Headers": "content-type",
			},
			ExpectedStatus: http.StatusNoContent,
		},
		{
			// apis.Serve binds a global CORS middleware limited to --origins;
			// the tracker must still work on any origin.
			Name:   "preflight with restricted global origins",
			Method: http.MethodOptions,
			URL:    hooks.CollectPath,
			Headers: map[string]string{
				"Origin":                        "https://example.com",
				"Access-Control-Request-Method": "POST",
			},
			ExpectedStatus: http.StatusNoContent,
			BeforeTestFunc: func(t testing.TB, app *tests.TestApp, e *core.ServeEvent) {
				e.Router.Bind(apis.CORS(apis.CORSConfig{AllowOrigins: []string{"https://dashboard.example"}}))
			},
		},
	}
	for _, sc := range scenarios {
		sc.TestAppFactory = func(t testing.TB) *tests.TestApp { return newFixture(t, fixtureOptions{}).app }
		sc.AfterTestFunc = func(t testing.TB, app *tests.TestApp, res *http.Response) {
			for name, want := range map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "POST, OPTIONS",
				"Access-Control-Allow-Headers": "Content-Type",
			} {
				if got := res.Header.Get(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
		}
		sc.Test(t)
	}
}

func TestCollectWritesNoRequestLog(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	defer f.app.Cleanup()
	f.app.Settings().Logs.MaxDays = 7 // NewTestApp turns request logs off
	mux := serveMux(t, f.app)

	if rec := post(mux, pageview(siteID, "https://example.com/"), chromeUA); rec.Code != http.StatusAccepted {
		t.Fatalf("good hit: status %d", rec.Code)
	}
	if rec := post(mux, pageview(noSiteID, "https://example.com/"), chromeUA); rec.Code != http.StatusBadRequest {
		t.Fatalf("bad hit: status %d", rec.Code)
	}
	// A control request on an ordinary route must be logged.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/health", nil))

	handler, ok := f.app.Logger().Handler().(*logger.BatchHandler)
	if !ok {
		t.Fatalf("unexpected logger handler %T", f.app.Logger().Handler())
	}
	ctx := context.WithValue(context.Background(), logger.BlockKey, true)

	urls := func() map[string]int {
		if err := handler.WriteAll(ctx); err != nil {
			t.Fatal(err)
		}
		logs := []*core.Log{}
		if err := f.app.LogQuery().All(&logs); err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, l := range logs {
			u, _ := l.Data["url"].(string)
			m[u]++
		}
		return m
	}

	// The logger writes from a goroutine: wait for the control row.
	deadline := time.Now().Add(10 * time.Second)
	for urls()["/api/health"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the control request was never logged; the check below would prove nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := urls()[hooks.CollectPath]; n != 0 {
		t.Fatalf("%d request log rows for %s, want none", n, hooks.CollectPath)
	}
}

// serveMux builds the app's router the way ApiScenario does.
func serveMux(t testing.TB, app *tests.TestApp) http.Handler {
	t.Helper()
	r, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	var mux http.Handler
	err = app.OnServe().Trigger(&core.ServeEvent{App: app, Router: r}, func(e *core.ServeEvent) error {
		mux, err = e.Router.BuildMux()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mux
}

func collectRequest(body, ua string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, hooks.CollectPath, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", ua)
	return req
}

func post(mux http.Handler, body, ua string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, collectRequest(body, ua))
	return rec
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// BenchmarkCollect measures the handler path of one hit: rate limit, read,
// parse, site lookup, enrichment and enqueue, through PocketBase's router.
func BenchmarkCollect(b *testing.B) {
	f := newFixture(b, fixtureOptions{rateLimit: 1e9})
	defer f.app.Cleanup()
	mux := serveMux(b, f.app)

	bodies := map[string]string{
		"pageview":     pageview(siteID, "https://example.com/blog/post?utm_source=newsletter"),
		"unknown_site": pageview(noSiteID, "https://example.com/"),
		"malformed":    `{"site":"` + siteID + `","type":`,
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			data := []byte(body)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, hooks.CollectPath, bytes.NewReader(data))
					req.Header.Set("Content-Type", "text/plain")
					req.Header.Set("User-Agent", chromeUA)
					rec := httptest.NewRecorder()
					mux.ServeHTTP(rec, req)
					if rec.Code >= 500 {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
