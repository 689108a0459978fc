package hooks_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/hooks"
	pbpublic "github.com/pocketlytics/pocketlytics/pb_public"
)

// trackerBudget is the most t.js may weigh gzipped.
const trackerBudget = 2048

func TestTrackerRoute(t *testing.T) {
	script, err := fs.ReadFile(pbpublic.FS(), "t.js")
	if err != nil {
		t.Fatal(err)
	}
	etag := fetchETag(t, "/t.js", hooks.RegisterTracker)

	factory := func(t testing.TB) *tests.TestApp {
		app, err := tests.NewTestApp()
		if err != nil {
			t.Fatal(err)
		}
		if err := hooks.RegisterTracker(app); err != nil {
			t.Fatal(err)
		}
		return app
	}
	wantHeaders := map[string]string{
		"Content-Type":                 "text/javascript; charset=utf-8",
		"Cache-Control":                "public, max-age=3600, stale-while-revalidate=86400",
		"Access-Control-Allow-Origin":  "*",
		"Cross-Origin-Resource-Policy": "cross-origin",
		"ETag":                         etag,
	}

	scenarios := []tests.ApiScenario{
		{
			Name:            "plain",
			Method:          http.MethodGet,
			URL:             "/t.js",
			Headers:         map[string]string{"Origin": "https://example.com"},
			ExpectedStatus:  200,
			ExpectedContent: []string{"/api/collect", "sendBeacon", "pocketlytics"},
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, wantHeaders)
				if enc := res.Header.Get("Content-Encoding"); enc != "" {
					t.Errorf("Content-Encoding = %q without Accept-Encoding", enc)
				}
				if body, _ := io.ReadAll(res.Body); !bytes.Equal(body, script) {
					t.Error("body differs from the embedded t.js")
				}
			},
		},
		{
			Name:               "gzip",
			Method:             http.MethodGet,
			URL:                "/t.js",
			Headers:            map[string]string{"Accept-Encoding": "br, gzip"},
			ExpectedStatus:     200,
			NotExpectedContent: []string{"/api/collect"},
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, wantHeaders)
				checkHeaders(t, res, map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
				zr, err := gzip.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				if body, _ := io.ReadAll(zr); !bytes.Equal(body, script) {
					t.Error("gunzipped body differs from the embedded t.js")
				}
			},
		},
		{
			Name:            "gzip refused with q=0",
			Method:          http.MethodGet,
			URL:             "/t.js",
			Headers:         map[string]string{"Accept-Encoding": "gzip;q=0, identity"},
			ExpectedStatus:  200,
			ExpectedContent: []string{"/api/collect"},
		},
		{
			Name:           "current ETag gives 304",
			Method:         http.MethodGet,
			URL:            "/t.js",
			Headers:        map[string]string{"If-None-Match": etag},
			ExpectedStatus: 304,
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, map[string]string{"ETag": etag})
			},
		},
		{
			Name:           "weak ETag in a list gives 304",
			Method:         http.MethodGet,
			URL:            "/t.js",
			Headers:        map[string]string{"If-None-Match": `"old", W/` + etag},
			ExpectedStatus: 304,
		},
		{
			Name:            "stale ETag gives the script",
			Method:          http.MethodGet,
			URL:             "/t.js",
			Headers:         map[string]string{"If-None-Match": `"0123"`},
			ExpectedStatus:  200,
			ExpectedContent: []string{"/api/collect"},
		},
		{
			Name:           "HEAD",
			Method:         http.MethodHead,
			URL:            "/t.js",
			ExpectedStatus: 200,
			AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
				checkHeaders(t, res, wantHeaders)
			},
		},
	}
	for _, s := range scenarios {
		s.TestAppFactory = factory
		s.Test(t)
	}
}

// TestTrackerSize keeps the tracker within its size budget.
func TestTrackerSize(t *testing.T) {
	script, err := fs.ReadFile(pbpublic.FS(), "t.js")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(script)
	zw.Close()
	t.Logf("t.js: %d bytes, %d gzipped", len(script), buf.Len())
	if buf.Len() > trackerBudget {
		t.Errorf("t.js is %d bytes gzipped, over the %d-byte budget", buf.Len(), trackerBudget)
	}
}

func checkHeaders(t testing.TB, res *http.Response, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// fetchETag requests url once from an app with register applied and returns
// the ETag it answered with.
func fetchETag(t *testing.T, url string, register func(app core.App) error) string {
	t.Helper()
	var etag string
	s := tests.ApiScenario{
		Name:               "etag of " + url,
		Method:             http.MethodGet,
		URL:                url,
		ExpectedStatus:     200,
		NotExpectedContent: []string{"\x00never"},
		TestAppFactory: func(t testing.TB) *tests.TestApp {
			app, err := tests.NewTestApp()
			if err != nil {
				t.Fatal(err)
			}
			if err := register(app); err != nil {
				t.Fatal(err)
			}
			return app
		},
		AfterTestFunc: func(t testing.TB, _ *tests.TestApp, res *http.Response) {
			etag = res.Header.Get("ETag")
		},
	}
	s.Test(t)
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("no strong ETag on %s: %q", url, etag)
	}
	return etag
}
