package main

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestAgainstTheApp drives the real binary in its Redis set-up (Redis queue
// with the spool, SQLite store) and checks the report against what the store
// received. The first run shows why the trusted-proxy setting matters: every
// hit then comes from 127.0.0.1 and the per-IP rate limit refuses most.
func TestAgainstTheApp(t *testing.T) {
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{
		"REDIS_URL=" + testutil.RedisURL(t), "REDIS_PREFIX=" + testutil.RedisPrefix(t, "pl_test_") + ":",
		"LIVE_CHANNEL=" + testutil.Unique("live_test_"), "FLUSH_INTERVAL=100ms",
	}})
	siteID, _ := app.CreateSite(t, "example.com")
	token := app.SuperuserToken(t)

	runOnce := func(extra ...string) *report {
		t.Helper()
		args := append([]string{
			"-url", app.URL, "-sites", siteID + "=example.com", "-rate", "0",
			"-duration", "30s", "-max-hits", "400", "-concurrency", "8", "-drain", "-drain-timeout", "30s",
		}, extra...)
		cfg, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	untrusted := runOnce()
	if untrusted.Errors["status 429"] == 0 {
		t.Errorf("without the trusted proxy every hit is 127.0.0.1 and must hit the rate limit: %+v", untrusted)
	}

	rep := runOnce("-trust-proxy-token", token)
	if rep.Sent != 400 || rep.Accepted+sumDropped(rep) != 400 || len(rep.Errors) != 0 {
		t.Fatalf("report %+v: want 400 hits answered 202", rep)
	}
	if rep.DrainMs == nil {
		t.Fatalf("queue did not drain: %s", rep.DrainFailed)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(app.DataDir, "analytics.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, countries int64
	err = db.QueryRow(`SELECT count(*), count(DISTINCT country) FROM events WHERE site_id = ?`, siteID).
		Scan(&rows, &countries)
	if err != nil {
		t.Fatal(err)
	}
	if want := untrusted.Accepted + rep.Accepted; rows != want {
		t.Errorf("store holds %d events, loadgen counted %d accepted", rows, want)
	}
	if countries < 5 {
		t.Errorf("events from %d countries; X-Forwarded-For was not used", countries)
	}
	t.Logf("accepted %d (%.0f/s), p99 %.1f ms, drained in %.0f ms, %d countries",
		rep.Accepted, rep.AcceptedPS, rep.LatencyMs.P99, *rep.DrainMs, countries)
}

func sumDropped(r *report) int64 {
	var n int64
	for _, v := range r.Dropped {
		n += v
	}
	return n
}
