// Package e2e drives the real binary with a real browser: Debian's chromium
// under playwright-core (node scripts beside this file), against an app
// started by testutil.StartApp. The tests skip, with a message, when
// CHROMIUM_PATH is unset (the test script sets it; CI fails on a skip).
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
	pbpublic "github.com/pocketlytics/pocketlytics/pb_public"
)

// chromium returns the browser to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		t.Skip("CHROMIUM_PATH is unset: browser tests need Debian's chromium (eval \"$(bash scripts/services.sh)\")")
	}
	if _, err := os.Stat(filepath.Join(dir(), "node_modules", "playwright-core")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--silent")
		cmd.Dir = dir()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in tests/e2e: %v\n%s", err, out)
		}
	}
	return path
}

func dir() string {
	return filepath.Join(testutil.ModuleRoot(), "tests", "e2e")
}

// runScript runs one of the node scripts with env added to the test's
// environment, streaming its output into the test log.
func runScript(t *testing.T, script string, timeout time.Duration, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir()
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		t.Logf("%s: %s", script, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
}

// pageServer serves test pages that embed the tracker, on its own port, so
// that the pages and the app are different origins. It answers for any host
// name: the browser reaches it as shop.pocketlytics.test (mapped to
// 127.0.0.1) and as localhost.
type pageServer struct {
	port string
	srv  *http.Server
}

func startPageServer(t *testing.T, appURL, siteID string) *pageServer {
	t.Helper()
	script, err := fs.ReadFile(pbpublic.FS(), "t.js")
	if err != nil {
		t.Fatal(err)
	}
	page := func(title, head string) string {
		return fmt.Sprintf("<!doctype html><html><head><meta charset=utf-8><title>%s</title>%s</head><body><h1>%s</h1></body></html>", title, head, title)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(script)
	})
	// Loads the tracker from the app, as a customer's site does.
	mux.HandleFunc("GET /shop/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("Shop", fmt.Sprintf(`<script defer src="%s/t.js" data-site="%s" data-heartbeat="1"></script>`, appURL, siteID)))
	})
	mux.HandleFunc("GET /shop", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("Shop", fmt.Sprintf(`<script defer src="%s/t.js" data-site="%s" data-heartbeat="1"></script>`, appURL, siteID)))
	})
	// A local copy of the tracker pointed at the app with data-api.
	mux.HandleFunc("GET /override", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("Override", fmt.Sprintf(`<script defer src="/t.js" data-site="%s" data-api="%s/api/collect" data-heartbeat="0" data-allow-localhost></script>`, siteID, appURL)))
	})
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("Plain", ""))
	})
	// Auto-tracked events: a tall page with an outbound link, a file link
	// and hash routes; a 404 page that says so in a meta tag.
	auto := fmt.Sprintf(`<script defer src="%s/t.js" data-site="%s" data-heartbeat="1" data-outbound data-downloads data-404 data-hash></script>`, appURL, siteID)
	mux.HandleFunc("GET /docs/", func(w http.ResponseWriter, r *http.Request) {
		other := "http://elsewhere.test:" + r.Host[strings.LastIndexByte(r.Host, ':')+1:]
		fmt.Fprintf(w, `<!doctype html><html><head><meta charset=utf-8><title>Docs</title>%s</head><body>
<p><a id=out href="%s/landing">elsewhere</a> <a id=tab href="%s/landing?tab" target=_blank>new tab</a>
<a id=mid href="%s/landing?middle">middle</a> <a id=dl href="/files/report.pdf">report</a></p>
<div style="height:5000px"></div><p id=end>end</p></body></html>`, auto, other, other, other)
	})
	mux.HandleFunc("GET /landing", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page("Landing", ""))
	})
	mux.HandleFunc("GET /files/report.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", `attachment; filename="report.pdf"`)
		w.Write([]byte("%PDF-1.4\n%%EOF\n"))
	})
	mux.HandleFunc("GET /gone", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, page("Not found", `<meta name="pocketlytics" content="404">`+auto))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &pageServer{port: fmt.Sprint(l.Addr().(*net.TCPAddr).Port), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go ps.srv.Serve(l)
	t.Cleanup(func() { ps.srv.Close() })
	return ps
}

// requireRoute fails the test when the app lacks a route the browser tests
// rely on, with a message that says what is missing.
func requireRoute(t *testing.T, app *testutil.App, path, contains string) {
	t.Helper()
	res, err := http.Get(app.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 64*1024)
	n, _ := res.Body.Read(buf)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(buf[:n]), contains) {
		t.Fatalf("GET %s: status %d without %q: is hooks.RegisterTracker/RegisterDashboard wired in main.go?", path, res.StatusCode, contains)
	}
}
