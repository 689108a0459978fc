// Package pipeline tests the whole data path of the real binary: hits posted
// to /api/collect against the rows that reach the analytics store, across
// SIGKILL and outages of Redis and ClickHouse.
package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

const domain = "shop.example.com"

func sqliteCounts(t *testing.T, dataDir, site string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "analytics.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return countRows(t, db, "SELECT pathname, count(*) FROM events WHERE site_id = ? GROUP BY pathname", site)
}

func countRows(t *testing.T, db *sql.DB, query, site string) map[string]int {
	t.Helper()
	rows, err := db.Query(query, site)
	if err != nil {
		t.Logf("count rows: %v", err) // the table may not exist yet
		return nil
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var path string
		var n int
		if err := rows.Scan(&path, &n); err != nil {
			t.Fatal(err)
		}
		counts[path] = n
	}
	return counts
}

func clickhouseCounts(t *testing.T, dsn, site string) map[string]int {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := clickhouse.OpenDB(opts)
	defer db.Close()
	return countRows(t, db, "SELECT pathname, toInt64(count()) FROM events WHERE site_id = ? GROUP BY pathname", site)
}

func covered(acked []int64, counts map[string]int) bool {
	for _, n := range acked {
		if counts[fmt.Sprintf("/p/%d", n)] == 0 {
			return false
		}
	}
	return true
}

// killUnderLoad runs load for a while, SIGKILLs the app mid-load, restarts it
// and returns the acknowledged hits.
func killUnderLoad(t *testing.T, app *testutil.App, site string) (*load, []int64) {
	l := newLoad(app.URL, site, domain)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx, 8, 0); close(done) }()
	time.Sleep(3 * time.Second)
	app.Kill()
	cancel()
	<-done
	acked := l.ackedSnapshot()
	app.Restart()
	return l, acked
}

func TestEmbeddedSIGKILLLosesNoAcknowledgedHit(t *testing.T) {
	t.Parallel()
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{"RATE_LIMIT=1000000", "FLUSH_INTERVAL=200ms"}})
	site, _ := app.CreateSite(t, domain)

	l, acked := killUnderLoad(t, app, site)

	var counts map[string]int
	waitFor(t, 90*time.Second, "every acknowledged hit in SQLite", func() bool {
		counts = sqliteCounts(t, app.DataDir, site)
		return covered(acked, counts)
	})
	check(t, acked, counts, l.next.Load())
}

func scaleEnv(t *testing.T, redisURL, chDSN string) []string {
	return []string{
		"RATE_LIMIT=1000000", "FLUSH_INTERVAL=200ms", "CLAIM_IDLE=2s",
		"REDIS_URL=" + redisURL, "REDIS_PREFIX=" + testutil.RedisPrefix(t, "pl_test_") + ":",
		"LIVE_CHANNEL=" + testutil.Unique("live_test_"), "CLICKHOUSE_URL=" + chDSN,
	}
}

func TestScaleNHitsInNRowsOut(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	app := testutil.StartApp(t, testutil.AppOptions{Env: scaleEnv(t, redisURL, dsn)})
	site, _ := app.CreateSite(t, domain)

	l := newLoad(app.URL, site, domain)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	l.run(ctx, 8, 0)
	acked := l.ackedSnapshot()
	if l.statuses[http.StatusAccepted] != len(acked) || len(l.statuses) != 1 || l.errors != 0 {
		t.Fatalf("every hit should be accepted: statuses %v, errors %d", l.statuses, l.errors)
	}

	var counts map[string]int
	waitFor(t, 60*time.Second, "every hit in ClickHouse", func() bool {
		counts = clickhouseCounts(t, dsn, site)
		return covered(acked, counts)
	})
	check(t, acked, counts, l.next.Load())
	if total := sum(counts); total != len(acked) {
		t.Fatalf("%d hits in, %d rows out", len(acked), total)
	}
}

func TestScaleSIGKILLNoLossNoDuplicates(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	app := testutil.StartApp(t, testutil.AppOptions{Env: scaleEnv(t, redisURL, dsn)})
	site, _ := app.CreateSite(t, domain)

	l, acked := killUnderLoad(t, app, site)

	var counts map[string]int
	waitFor(t, 90*time.Second, "every acknowledged hit in ClickHouse", func() bool {
		counts = clickhouseCounts(t, dsn, site)
		return covered(acked, counts)
	})
	check(t, acked, counts, l.next.Load())
}

// outage runs paced load for 36 s and cuts the proxy from 3 s to 33 s.
func outage(t *testing.T, app *testutil.App, site string, proxy *testutil.Proxy) (*load, []int64) {
	l := newLoad(app.URL, site, domain)
	ctx, cancel := context.WithTimeout(context.Background(), 36*time.Second)
	defer cancel()
	go func() {
		time.Sleep(3 * time.Second)
		proxy.Cut()
		time.Sleep(30 * time.Second)
		proxy.Restore()
	}()
	l.run(ctx, 4, 20*time.Millisecond)
	acked := l.ackedSnapshot()
	for status, n := range l.statuses {
		if status != http.StatusAccepted {
			t.Errorf("%d answers with status %d during the outage", n, status)
		}
	}
	if l.errors > 0 {
		t.Errorf("%d requests failed during the outage", l.errors)
	}
	return l, acked
}

func TestScaleClickHouseOutageLosesNothing(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	proxy, proxied := behindProxy(t, dsn)

	app := testutil.StartApp(t, testutil.AppOptions{Env: scaleEnv(t, redisURL, proxied)})
	site, _ := app.CreateSite(t, domain)

	l, acked := outage(t, app, site, proxy)

	var counts map[string]int
	waitFor(t, 90*time.Second, "the backlog to drain into ClickHouse", func() bool {
		counts = clickhouseCounts(t, dsn, site)
		return covered(acked, counts)
	})
	check(t, acked, counts, l.next.Load())
}

func TestScaleRedisOutageLosesNothing(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	proxy, proxied := behindProxy(t, redisURL)

	app := testutil.StartApp(t, testutil.AppOptions{Env: scaleEnv(t, proxied, dsn)})
	site, _ := app.CreateSite(t, domain)

	l, acked := outage(t, app, site, proxy)

	var counts map[string]int
	waitFor(t, 90*time.Second, "spooled hits to reach ClickHouse", func() bool {
		counts = clickhouseCounts(t, dsn, site)
		return covered(acked, counts)
	})
	check(t, acked, counts, l.next.Load())
}

// behindProxy puts a proxy in front of the service of rawURL (a Redis URL or a
// ClickHouse DSN) and returns it with the URL that goes through it.
func behindProxy(t *testing.T, rawURL string) (*testutil.Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, u.Host)
	u.Host = proxy.Addr
	return proxy, u.String()
}

func sum(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// The app must start, and keep every hit, while Redis is down at start.
func TestScaleStartsWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	proxy, proxied := behindProxy(t, redisURL)
	proxy.Cut()

	app := testutil.StartApp(t, testutil.AppOptions{Env: scaleEnv(t, proxied, dsn)})
	site, _ := app.CreateSite(t, domain)

	l := newLoad(app.URL, site, domain)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.run(ctx, 2, 20*time.Millisecond)
	acked := l.ackedSnapshot()
	if l.statuses[http.StatusAccepted] != len(acked) || len(l.statuses) != 1 || l.errors != 0 {
		t.Fatalf("every hit should be accepted while Redis is down: statuses %v, errors %d", l.statuses, l.errors)
	}

	proxy.Restore()
	var counts map[string]int
	waitFor(t, 60*time.Second, "spooled hits to reach ClickHouse", func() bool {
		counts = clickhouseCounts(t, dsn, site)
		return covered(acked, counts)
	})
	check(t, acked, counts, l.next.Load())
}

// A node restarted after a SIGKILL stores the entries it left pending at
// once, under its own name kept in pb_data, not after CLAIM_IDLE (a minute
// here, as by default).
func TestScaleSIGKILLRecoversInSeconds(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	env := append(scaleEnv(t, redisURL, dsn), "CLAIM_IDLE=1m")
	app := testutil.StartApp(t, testutil.AppOptions{Env: env})
	site, _ := app.CreateSite(t, domain)

	l := newLoad(app.URL, site, domain)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx, 8, 0); close(done) }()
	time.Sleep(3 * time.Second)
	app.Kill()
	cancel()
	<-done
	acked := l.ackedSnapshot()
	if n := pendingOf(t, redisURL, env, app.DataDir); n == 0 {
		t.Fatal("nothing was pending under the killed node: the test shows nothing")
	}

	restarted := time.Now()
	app.Restart()
	var counts map[string]int
	waitFor(t, 10*time.Second-time.Since(restarted), "every acknowledged hit in ClickHouse within 10 s of the restart", func() bool {
		counts = clickhouseCounts(t, dsn, site)
		return covered(acked, counts)
	})
	t.Logf("all stored %s after the restart began", time.Since(restarted).Round(100*time.Millisecond))
	check(t, acked, counts, l.next.Load())
}

// pendingOf counts the stream entries pending under the node of dataDir.
func pendingOf(t *testing.T, redisURL string, env []string, dataDir string) int64 {
	t.Helper()
	prefix := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "REDIS_PREFIX="); ok {
			prefix = v
		}
	}
	node, err := os.ReadFile(filepath.Join(dataDir, "node_id"))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: prefix + "events", Group: "flushers", Consumer: strings.TrimSpace(string(node)),
		Start: "-", End: "+", Count: 100000,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(p))
}
