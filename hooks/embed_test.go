package hooks_test

import (
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

func TestEmbedOrigins(t *testing.T) {
	app := livetest.NewApp(t) // with the sites hooks
	if err := hooks.RegisterShares(app); err != nil {
		t.Fatal(err)
	}
	if err := hooks.RegisterDashboard(app, "/"); err != nil {
		t.Fatal(err)
	}
	srv := livetest.Serve(t, app)

	site, _ := app.FindRecordById("sites", livetest.Site)
	site.Set("embed_origins", []string{"https://Status.Example.com/", "http://localhost:8080"})
	if err := app.Save(site); err != nil {
		t.Fatal(err)
	}
	if got := site.GetString("embed_origins"); got != `["https://status.example.com","http://localhost:8080"]` {
		t.Fatalf("stored origins %s", got)
	}
	for _, bad := range []string{"status.example.com", "https://x.com/path", "https://x.com; script-src *", "javascript://x", "https://a b"} {
		site.Set("embed_origins", []string{bad})
		if err := app.Save(site); err == nil {
			t.Fatalf("origin %q accepted", bad)
		}
	}

	shares, _ := app.FindCollectionByNameOrId(access.SharesCollection)
	share := core.NewRecord(shares)
	share.Set("site", livetest.Site)
	if err := app.Save(share); err != nil {
		t.Fatal(err)
	}
	tok := share.GetString("token")
	for _, tc := range []struct {
		path, ancestors string
		deny            bool
	}{
		{"/share/" + tok, "frame-ancestors https://status.example.com http://localhost:8080", false},
		{"/share/" + tok + "/live", "frame-ancestors https://status.example.com http://localhost:8080", false},
		{"/share/" + strings.Repeat("x", 40), "frame-ancestors 'none'", true},
		{"/share/" + livetest.Public, "frame-ancestors 'none'", true}, // public, no origins listed
		{"/", "frame-ancestors 'none'", true},
		{"/sites/" + livetest.Site, "frame-ancestors 'none'", true},
	} {
		res, body := call(t, srv, "GET", tc.path, nil, nil)
		wantStatus(t, tc.path, res, body, 200)
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.HasSuffix(csp, tc.ancestors) || (res.Header.Get("X-Frame-Options") == "DENY") != tc.deny {
			t.Errorf("%s: CSP %q, X-Frame-Options %q; want %q", tc.path, csp, res.Header.Get("X-Frame-Options"), tc.ancestors)
		}
	}
}
