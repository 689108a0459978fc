package pipeline

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestTwoInstancesOneSession sends one browser's visit alternately to two
// `pocketlytics serve` processes on one Redis, as a load balancer without
// sticky sessions does: every hit is kept, and the stored visit is one
// session with one entry.
func TestTwoInstancesOneSession(t *testing.T) {
	t.Parallel()
	env := []string{
		"REDIS_URL=" + testutil.RedisURL(t), "REDIS_PREFIX=" + testutil.RedisPrefix(t, "pl_test_") + ":",
		"LIVE_CHANNEL=" + testutil.Unique("live_test_"), "FLUSH_INTERVAL=200ms", "RATE_LIMIT=1000",
		"REDIS_SESSION_TIMEOUT=5s", // the test Redis is shared and may stall; a fallback could split the visit

	}
	a := testutil.StartApp(t, testutil.AppOptions{Env: env})
	b := testutil.StartApp(t, testutil.AppOptions{Env: env})
	// Both instances must know the site, under the same id.
	site, _ := a.CreateSite(t, domain)
	userB, _ := b.CreateUser(t, testutil.Unique("b")+"@example.com", "user-password-123")
	b.Call(t, "POST", "/api/collections/sites/records", b.SuperuserToken(t), map[string]any{
		"id": site, "name": "Shop", "domains": []string{domain}, "owner": userB,
	}, nil, http.StatusOK)

	hits := []struct {
		via  *testutil.App
		typ  string
		path string
	}{
		{a, "pageview", "/"},
		{b, "ping", "/"},
		{b, "pageview", "/pricing"},
		{a, "event", "/pricing"},
		{b, "pageview", "/signup"},
		{a, "leave", "/signup"},
	}
	for i, h := range hits {
		body, _ := json.Marshal(map[string]any{"site": site, "type": h.typ, "name": "cta", "url": "https://" + domain + h.path})
		req, _ := http.NewRequest(http.MethodPost, h.via.URL+"/api/collect", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("User-Agent", desktopUA)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted || res.Header.Get(hooks.DroppedHeader) != "" {
			t.Fatalf("hit %d (%s): status %d, dropped %q", i, h.typ, res.StatusCode, res.Header.Get(hooks.DroppedHeader))
		}
	}

	// Either instance may flush any hit: read both stores.
	var rows []sessionRow
	waitFor(t, 30*time.Second, "every hit stored", func() bool {
		rows = append(sessionRows(t, a.DataDir, site), sessionRows(t, b.DataDir, site)...)
		return len(rows) >= len(hits)
	})
	if len(rows) != len(hits) {
		t.Fatalf("%d rows for %d hits", len(rows), len(hits))
	}
	entries := 0
	for _, r := range rows {
		if r.session != rows[0].session || r.visitor != rows[0].visitor {
			t.Fatalf("one visit split: %+v", rows)
		}
		if r.entry {
			entries++
			if r.typ != "pageview" || r.path != "/" {
				t.Fatalf("entry on %s %s, want the first pageview", r.typ, r.path)
			}
		}
	}
	if entries != 1 {
		t.Fatalf("%d entries, want 1: %+v", entries, rows)
	}
}

type sessionRow struct {
	typ, path        string
	visitor, session int64
	entry            bool
}

func sessionRows(t *testing.T, dataDir, site string) []sessionRow {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "analytics.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query("SELECT type, pathname, visitor_id, session_id, entry FROM events WHERE site_id = ?", site)
	if err != nil {
		return nil // the table may not exist yet
	}
	defer rs.Close()
	var rows []sessionRow
	for rs.Next() {
		var r sessionRow
		if err := rs.Scan(&r.typ, &r.path, &r.visitor, &r.session, &r.entry); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}
