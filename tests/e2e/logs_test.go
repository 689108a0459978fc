package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestLogsShowClickHouseOutage: during a ClickHouse outage the admin UI's
// Logs page lists the flusher's retries, so an operator who opens it sees
// the fault. The screenshot goes to E2E_SCREENSHOTS (default: a temporary
// directory; docs/screenshots holds the committed one).
func TestLogsShowClickHouseOutage(t *testing.T) {
	browser := chromium(t)
	dsn := testutil.ClickHouseDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, u.Host)
	u.Host = proxy.Addr
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{"CLICKHOUSE_URL=" + u.String(), "FLUSH_INTERVAL=200ms"}})
	site, _ := app.CreateSite(t, "shop.example.com")
	admin := app.SuperuserToken(t)

	proxy.Cut()
	const msg = "flush: insert failed, retrying"
	filter := url.QueryEscape(fmt.Sprintf("message='%s'", msg))
	deadline := time.Now().Add(60 * time.Second)
	for n := 0; ; n++ {
		body := fmt.Sprintf(`{"site":%q,"type":"pageview","url":"https://shop.example.com/p/%d"}`, site, n)
		req, _ := http.NewRequest("POST", app.URL+"/api/collect", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
		var logs struct {
			TotalItems int `json:"totalItems"`
		}
		app.Call(t, "GET", "/api/logs?filter="+filter, admin, nil, &logs, http.StatusOK)
		if logs.TotalItems > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q entry in the logs API", msg)
		}
		time.Sleep(500 * time.Millisecond)
	}

	shots := os.Getenv("E2E_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	runScript(t, "logs.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"EMAIL=admin@example.com",
		"PASSWORD=admin-password-123",
		"LOG_MESSAGE="+msg,
		"SCREENSHOTS="+shots,
	)
}
