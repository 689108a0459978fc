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

	const password = "user-password-123"
	user := testutil.Unique("embedder") + "@example.com"
	_, token := app.CreateUser(t, user, password)
	var site, share struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	app.Call(t, "POST", "/api/collections/sites/records", token, map[string]any{
		"name": "E2E embedded shop", "domains": []string{"shop.pocketlytics.test"}, "timezone": "UTC",
	}, &site, http.StatusOK)
	app.Call(t, "POST", "/api/collections/shares/records", token, map[string]any{"site": site.ID}, &share, http.StatusOK)

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
		"SITE_ID="+site.ID,
		"SHARE_URL="+app.URL+"/share/"+share.Token,
		"USER_EMAIL="+user,
		"USER_PASSWORD="+password,
		fmt.Sprintf("ALLOWED=http://allowed.pocketlytics.test:%d", port),
		fmt.Sprintf("REFUSED=http://refused.pocketlytics.test:%d", port),
	)
}
