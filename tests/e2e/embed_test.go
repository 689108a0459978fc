package e2e

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestEmbed shows a share link in an <iframe> on an allowed origin and
// checks that another origin cannot frame it (see embed.mjs).
func TestEmbed(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)

	owner := newSiteOwner(t, app, "E2E embedded shop", "UTC", "shop.pocketlytics.test")
	var share struct {
		Token string `json:"token"`
	}
	app.Call(t, "POST", "/api/collections/shares/records", owner.Token, map[string]any{"site": owner.SiteID}, &share, http.StatusOK)

	// Host pages that frame ?src, on two names of one server.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /host", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>host</title><iframe src="%s" width="800" height="600"></iframe>`, html.EscapeString(r.URL.Query().Get("src")))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	runScript(t, "embed.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"SITE_ID="+owner.SiteID,
		"SHARE_URL="+app.URL+"/share/"+share.Token,
		"USER_EMAIL="+owner.Email,
		"USER_PASSWORD="+owner.Password,
		fmt.Sprintf("ALLOWED=http://allowed.pocketlytics.test:%d", port),
		fmt.Sprintf("REFUSED=http://refused.pocketlytics.test:%d", port),
	)
}
