// Package faults drives each fault an operator must hear about on the real
// binary — Redis or ClickHouse unreachable, a full disk, a poison entry, a
// missing geo database — and reads the entries back from PocketBase's log
// store (`_logs`, the admin UI's Logs page): each fault is there, with its
// level and attributes, at a bounded rate.
package faults

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

const domain = "shop.example.com"

// PocketBase's levels as stored in _logs (slog's).
const (
	levelInfo  = 0
	levelWarn  = 4
	levelError = 8
)

type entry struct {
	Level   int
	Message string
	Data    map[string]any
	Created string
}

// logs reads the app's stored log entries, oldest first.
func logs(t *testing.T, app *testutil.App) []entry {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(app.DataDir, "auxiliary.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT level, message, data, created FROM _logs ORDER BY created, rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var e entry
		var data string
		if err := rows.Scan(&e.Level, &e.Message, &data, &e.Created); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
			t.Fatalf("log data %q: %v", data, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitLog waits (PocketBase writes its logs every few seconds) for an entry
// with message msg and returns all of them.
func waitLog(t *testing.T, app *testutil.App, msg string) []entry {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var found []entry
		for _, e := range logs(t, app) {
			if e.Message == msg {
				found = append(found, e)
			}
		}
		if len(found) > 0 {
			return found
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log entry %q; stored: %v", msg, messages(logs(t, app)))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func messages(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%d %s %v", e.Level, e.Message, e.Data))
	}
	return out
}

// checkEntry asserts an entry's level and that each attribute in attrs is
// non-empty text (or, for an int attribute, present).
func checkEntry(t *testing.T, e entry, level int, attrs ...string) {
	t.Helper()
	if e.Level != level {
		t.Errorf("%q: level %d, want %d", e.Message, e.Level, level)
	}
	for _, a := range attrs {
		switch v := e.Data[a].(type) {
		case string:
			if v == "" {
				t.Errorf("%q: attribute %q is empty", e.Message, a)
			}
		case float64:
		default:
			t.Errorf("%q: attribute %q is %T (%v), want a value: %v", e.Message, a, v, v, e.Data)
		}
	}
}

// bounded asserts that no message was logged more than max times: a fault
// that recurs every retry or every hit must not write an entry each time.
func bounded(t *testing.T, es []entry, max int) {
	t.Helper()
	counts := map[string]int{}
	for _, e := range es {
		if e.Level >= levelWarn {
			counts[e.Message]++
		}
	}
	for msg, n := range counts {
		if n > max {
			t.Errorf("%q logged %d times, want at most %d", msg, n, max)
		}
	}
}

// post sends pageviews for d from workers goroutines and returns the
// answers' statuses.
func post(t *testing.T, app *testutil.App, site string, d time.Duration, workers int) map[int]int {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for w := range workers {
		wg.Go(func() {
			for n := 0; time.Now().Before(end); n++ {
				body := fmt.Sprintf(`{"site":%q,"type":"pageview","url":"https://%s/w%d/%d","w":1280}`, site, domain, w, n)
				req, _ := http.NewRequest("POST", app.URL+"/api/collect", strings.NewReader(body))
				req.Header.Set("Content-Type", "text/plain")
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				res.Body.Close()
				mu.Lock()
				statuses[res.StatusCode]++
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return statuses
}

// waitStoreReachable waits until health reports the analytics store open
// and answering.
func waitStoreReachable(t *testing.T, app *testutil.App) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var health struct {
			StoreReachable bool `json:"storeReachable"`
		}
		if res, err := http.Get(app.URL + "/api/analytics/health"); err == nil {
			_ = json.NewDecoder(res.Body).Decode(&health)
			res.Body.Close()
		}
		if health.StoreReachable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the analytics store did not open within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
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

func scaleEnv(t *testing.T, redisURL, chDSN string) []string {
	return []string{
		"RATE_LIMIT=1000000", "FLUSH_INTERVAL=200ms",
		"REDIS_URL=" + redisURL, "REDIS_PREFIX=" + testutil.RedisPrefix(t, "pl_test_") + ":",
		"LIVE_CHANNEL=" + testutil.Unique("live_test_"), "CLICKHOUSE_URL=" + chDSN,
	}
}

// outage is how long the Redis and ClickHouse outages last: long enough for
// a fault logged per 100 ms retry to show as ~150 entries.
const outage = 15 * time.Second

func TestClickHouseOutageIsLogged(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	proxy, proxied := behindProxy(t, dsn)
	app := testutil.StartApp(t, testutil.AppOptions{Env: scaleEnv(t, redisURL, proxied)})
	site, _ := app.CreateSite(t, domain)
	// The store opens (and migrates) in the background: cut it once open,
	// so the outage is one of inserts, not of the start.
	waitStoreReachable(t, app)

	proxy.Cut()
	statuses := post(t, app, site, outage, 2)
	if len(statuses) != 1 || statuses[http.StatusAccepted] == 0 {
		t.Errorf("answers during the outage: %v, want 202 only", statuses)
	}
	failed := waitLog(t, app, "flush: insert failed, retrying")
	checkEntry(t, failed[0], levelWarn, "error", "retryIn", "events", "attempt")
	proxy.Restore()
	recovered := waitLog(t, app, "flush: insert succeeded after retries")
	checkEntry(t, recovered[0], levelInfo, "events", "attempts")
	bounded(t, logs(t, app), 12)
}

func TestRedisOutageIsLogged(t *testing.T) {
	t.Parallel()
	redisURL, dsn := testutil.RedisURL(t), testutil.ClickHouseDSN(t)
	proxy, proxied := behindProxy(t, redisURL)
	app := testutil.StartApp(t, testutil.AppOptions{Env: scaleEnv(t, proxied, dsn)})
	site, _ := app.CreateSite(t, domain)

	proxy.Cut()
	statuses := post(t, app, site, outage, 2)
	if len(statuses) != 1 || statuses[http.StatusAccepted] == 0 {
		t.Errorf("answers during the outage: %v, want 202 only", statuses)
	}
	spooling := waitLog(t, app, "spool: redis is failing; spooling events to local disk")
	checkEntry(t, spooling[0], levelWarn, "error")
	proxy.Restore()
	waitLog(t, app, "spool: redis answers again; replaying spooled events")
	bounded(t, logs(t, app), 12)
}

// mountFull mounts a tmpfs of size bytes on a new directory; the test needs
// root (the suite's machine and CI run as root).
func mountFull(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs for the full disk (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

func TestDiskFullIsLogged(t *testing.T) {
	t.Parallel()
	queueDir := mountFull(t, 48<<10) // some hundred hits
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{
		"RATE_LIMIT=1000000", "QUEUE_DIR=" + queueDir, "FLUSH_INTERVAL=1h",
	}})
	site, _ := app.CreateSite(t, domain)

	statuses := post(t, app, site, 8*time.Second, 4)
	if statuses[http.StatusServiceUnavailable] == 0 || statuses[http.StatusInternalServerError] > 0 {
		t.Fatalf("answers with the disk full: %v, want 503s and no 500", statuses)
	}
	// Health says what ingest can do: nothing.
	res, err := http.Get(app.URL + "/api/analytics/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status      string `json:"status"`
		IngestError string `json:"ingestError"`
	}
	_ = json.NewDecoder(res.Body).Decode(&health)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || health.Status != "failing" || !strings.Contains(health.IngestError, "no space left") {
		t.Errorf("health with the disk full: %d %+v, want 503 failing", res.StatusCode, health)
	}

	refused := waitLog(t, app, "Failed to queue a hit")
	checkEntry(t, refused[0], levelWarn, "error", "suppressed")
	if !strings.Contains(refused[0].Data["error"].(string), "no space left on device") {
		t.Errorf("error %q does not say why", refused[0].Data["error"])
	}
	// One entry per 10 s, not one per refused hit.
	if len(refused) > 2 {
		t.Errorf("%d entries for %d refused hits, want at most 2", len(refused), statuses[http.StatusServiceUnavailable])
	}
}

func TestPoisonEntryIsLogged(t *testing.T) {
	t.Parallel()
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{"RATE_LIMIT=1000000"}})
	site, _ := app.CreateSite(t, domain)
	post(t, app, site, 200*time.Millisecond, 1)
	app.Stop()

	// A record whose frame is whole but whose payload is no event: what a
	// bug in an older writer would leave behind.
	segs, _ := filepath.Glob(filepath.Join(app.DataDir, "queue", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no queue segment")
	}
	slices.Sort(segs)
	payload := []byte("not an event")
	var frame bytes.Buffer
	_ = binary.Write(&frame, binary.LittleEndian, uint32(len(payload)))
	_ = binary.Write(&frame, binary.LittleEndian, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	frame.Write(payload)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(frame.Bytes()); err != nil {
		t.Fatal(err)
	}
	f.Close()

	app.Restart()
	poison := waitLog(t, app, "localq: undecodable entry moved to the dead-letter log")
	checkEntry(t, poison[0], levelError, "id", "error")
	if len(poison) != 1 {
		t.Errorf("%d entries for one poison entry", len(poison))
	}
}

func TestMissingGeoDatabaseIsLogged(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	// The app starts and takes hits: locations come from the embedded
	// country database meanwhile.
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{"GEOIP_DB=" + missing}})
	site, _ := app.CreateSite(t, domain)
	if statuses := post(t, app, site, 100*time.Millisecond, 1); len(statuses) != 1 || statuses[http.StatusAccepted] == 0 {
		t.Errorf("answers without the geo database: %v, want 202", statuses)
	}
	geo := waitLog(t, app, "geo: the configured database cannot be opened; using the country database instead")
	checkEntry(t, geo[0], levelError, "path", "error")
	if geo[0].Data["path"] != missing {
		t.Errorf("path %v, want %s", geo[0].Data["path"], missing)
	}
}
