// Package scaleout tests the scaled-out deployment of docs/SCALING.md with
// real processes: a control node and two collectors (`pocketlytics
// collect`) behind nginx running deploy/nginx/pocketlytics.conf, on one
// Redis and a ClickHouse cluster of two shards.
package scaleout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

const (
	domain       = "shop.example.com"
	desktopUA    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	metricsToken = "scaleout-metrics"
)

type cluster struct {
	control    *testutil.App
	collectors []*testutil.App
	proxy      string // nginx's base URL
	dsn        string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	redisURL := testutil.RedisURL(t)
	dsn, shards := testutil.ClickHouseClusterDSN(t, "CLICKHOUSE_TEST_SHARDS")
	env := []string{
		"REDIS_URL=" + redisURL,
		"REDIS_PREFIX=" + testutil.RedisPrefix(t, "pltest") + ":",
		"LIVE_CHANNEL=" + testutil.Unique("pltest-live-"),
		"CLICKHOUSE_URL=" + dsn, "CLICKHOUSE_CLUSTER=" + shards,
		"TRUSTED_PROXY_HEADERS=X-Real-IP",
		"RATE_LIMIT=1000000", "FLUSH_INTERVAL=200ms", "CLAIM_IDLE=1m",
		"METRICS_TOKEN=" + metricsToken,
	}
	c := &cluster{dsn: dsn}
	c.control = testutil.StartApp(t, testutil.AppOptions{Env: env})
	for range 2 {
		c.collectors = append(c.collectors, testutil.StartApp(t, testutil.AppOptions{
			Env: env, Command: "collect", Addr: testutil.FreeAddr(t),
		}))
	}
	c.proxy = startNginx(t, c.control.Addr, c.collectors[0].Addr, c.collectors[1].Addr)
	return c
}

// TestScaleOut runs the deployment through what a scaled set-up promises, on
// one cluster (three app processes take a while to start).
func TestScaleOut(t *testing.T) {
	c := startCluster(t)

	t.Run("a new site is collected on every collector within a second", func(t *testing.T) {
		site, _ := c.control.CreateSite(t, domain)
		created := time.Now() // the create request returned
		for i, col := range c.collectors {
			for status := 0; status != http.StatusAccepted; {
				if time.Since(created) > time.Second {
					t.Fatalf("collector %d still answers %d a second after the site was created", i+1, status)
				}
				status = post(t, http.DefaultClient, col.URL, site, "/mirror", desktopUA, nil)
			}
		}
		t.Logf("both collectors took the new site's hits %s after it was created", time.Since(created).Round(time.Millisecond))
	})

	t.Run("live messages from both collectors reach a dashboard on the control node", func(t *testing.T) {
		site, owner := c.control.CreateSite(t, domain)
		waitSite(t, c, site)
		sse := livetest.Connect(t, c.control.URL)
		if status := sse.Subscribe(t, owner, realtime.Topic(site)); status != http.StatusNoContent {
			t.Fatalf("subscribe: status %d", status)
		}
		for i, col := range c.collectors {
			ua := desktopUA + " collector/" + strconv.Itoa(i+1) // two visitors
			if status := post(t, http.DefaultClient, col.URL, site, "/via-"+strconv.Itoa(i+1), ua, nil); status != http.StatusAccepted {
				t.Fatalf("collector %d: status %d", i+1, status)
			}
		}
		pages := map[any]bool{}
		for !pages["/via-1"] || !pages["/via-2"] {
			_, m := sse.NextType(t, realtime.TypeArrival)
			pages[m["page"]] = true
		}
	})

	t.Run("N hits in through the proxy, N rows out, spread over both collectors", func(t *testing.T) {
		site, _ := c.control.CreateSite(t, domain)
		waitSite(t, c, site)
		before := c.accepted(t)
		l := newLoad(c.proxy, site)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		l.run(ctx, 8)
		acked := l.ackedSnapshot()
		if l.statuses[http.StatusAccepted] != len(acked) || len(l.statuses) != 1 || l.errors != 0 {
			t.Fatalf("every hit should be accepted: statuses %v, errors %d", l.statuses, l.errors)
		}
		for i, n := range c.accepted(t) {
			if n-before[i] < float64(len(acked))/4 {
				t.Errorf("collector %d took %.0f of %d hits", i+1, n-before[i], len(acked))
			}
		}
		counts := c.waitStored(t, site, acked, 60*time.Second)
		check(t, acked, counts)
		if total := sum(counts); total != len(acked) {
			t.Fatalf("%d hits in, %d rows out", len(acked), total)
		}
	})

	t.Run("a collector SIGKILLed under load loses nothing and stores its hits within 10 s of its restart", func(t *testing.T) {
		site, _ := c.control.CreateSite(t, domain)
		waitSite(t, c, site)
		l := newLoad(c.proxy, site)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.run(ctx, 8); close(done) }()
		time.Sleep(2 * time.Second)
		c.collectors[0].Kill()
		time.Sleep(time.Second) // the other collector goes on alone
		cancel()
		<-done
		acked := l.ackedSnapshot()

		restarted := time.Now()
		c.collectors[0].Restart()
		counts := c.waitStored(t, site, acked, 10*time.Second-time.Since(restarted))
		t.Logf("all stored %s after the restart began; answers %v", time.Since(restarted).Round(100*time.Millisecond), l.statuses)
		check(t, acked, counts)
	})

	t.Run("the visitor hash sees the visitor's address, not the proxy's", func(t *testing.T) {
		site, _ := c.control.CreateSite(t, domain)
		waitSite(t, c, site)
		from := func(ip string) *http.Client {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		}
		spoofed := http.Header{"X-Real-Ip": {"203.0.113.9"}, "X-Forwarded-For": {"203.0.113.9"}}
		for _, h := range []struct {
			ip, path string
			header   http.Header
		}{
			{"127.0.0.2", "/a", nil},
			{"127.0.0.2", "/a-again", nil}, // the next round-robin turn: the other collector
			{"127.0.0.2", "/a-spoofed", spoofed},
			{"127.0.0.3", "/b", nil},
		} {
			if status := post(t, from(h.ip), c.proxy, site, h.path, desktopUA, h.header); status != http.StatusAccepted {
				t.Fatalf("%s from %s: status %d", h.path, h.ip, status)
			}
		}
		var v map[string]uint64
		waitFor(t, 30*time.Second, "the four hits in ClickHouse", func() bool {
			v = c.visitors(t, site)
			return len(v) == 4
		})
		if v["/a"] != v["/a-again"] || v["/a"] != v["/a-spoofed"] {
			t.Errorf("one visitor from 127.0.0.2 got several ids (a header the client sent was trusted, or collectors differ): %v", v)
		}
		if v["/a"] == v["/b"] {
			t.Errorf("visitors from 127.0.0.2 and 127.0.0.3 got one id (the proxy's address was hashed): %v", v)
		}
	})
}

// waitSite waits until both collectors know the site.
func waitSite(t *testing.T, c *cluster, site string) {
	t.Helper()
	for _, col := range c.collectors {
		waitFor(t, 5*time.Second, "the site on "+col.URL, func() bool {
			return post(t, http.DefaultClient, col.URL, site, "/warm-up", desktopUA+" warm-up", nil) == http.StatusAccepted
		})
	}
}

// accepted reads each collector's count of accepted hits from its metrics.
func (c *cluster) accepted(t *testing.T) []float64 {
	t.Helper()
	var out []float64
	for _, col := range c.collectors {
		req, _ := http.NewRequest(http.MethodGet, col.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+metricsToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n := -1.0
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "pocketlytics_hits_accepted_total "); ok {
				n, _ = strconv.ParseFloat(v, 64)
			}
		}
		res.Body.Close()
		if n < 0 {
			t.Fatalf("no pocketlytics_hits_accepted_total in %s/metrics (status %d)", col.URL, res.StatusCode)
		}
		out = append(out, n)
	}
	return out
}

// post sends a pageview as the tracker does and returns the status; a hit
// dropped on purpose counts as a failure.
func post(t *testing.T, client *http.Client, base, site, path, ua string, header http.Header) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"site": site, "type": "pageview", "url": "https://" + domain + path, "w": 1280})
	req, err := http.NewRequest(http.MethodPost, base+"/api/collect", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", ua)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if d := res.Header.Get(hooks.DroppedHeader); d != "" {
		t.Fatalf("hit %s dropped: %s", path, d)
	}
	return res.StatusCode
}

func (c *cluster) query(t *testing.T, q, site string, scan func(path string, n uint64)) {
	t.Helper()
	opts, err := clickhouse.ParseDSN(c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := clickhouse.OpenDB(opts)
	defer db.Close()
	rows, err := db.Query(q, site)
	if err != nil {
		t.Logf("query: %v", err) // the table may not exist yet
		return
	}
	defer rows.Close()
	for rows.Next() {
		var path string
		var n uint64
		if err := rows.Scan(&path, &n); err != nil {
			t.Fatal(err)
		}
		scan(path, n)
	}
}

// counts returns the stored rows per path of the load's hits.
func (c *cluster) counts(t *testing.T, site string) map[string]int {
	counts := map[string]int{}
	c.query(t, "SELECT pathname, toUInt64(count()) FROM events WHERE site_id = ? AND pathname LIKE '/p/%' GROUP BY pathname", site,
		func(path string, n uint64) { counts[path] = int(n) })
	return counts
}

// visitors returns the visitor id stored with each path.
func (c *cluster) visitors(t *testing.T, site string) map[string]uint64 {
	v := map[string]uint64{}
	c.query(t, "SELECT pathname, any(visitor_id) FROM events WHERE site_id = ? AND pathname != '/warm-up' GROUP BY pathname", site,
		func(path string, id uint64) { v[path] = id })
	return v
}

// waitStored waits until every acknowledged hit is stored and returns the
// counts.
func (c *cluster) waitStored(t *testing.T, site string, acked []int64, timeout time.Duration) map[string]int {
	t.Helper()
	var counts map[string]int
	waitFor(t, timeout, "every acknowledged hit in ClickHouse", func() bool {
		counts = c.counts(t, site)
		for _, n := range acked {
			if counts[fmt.Sprintf("/p/%d", n)] == 0 {
				return false
			}
		}
		return true
	})
	return counts
}

// check fails on an acknowledged hit missing or any hit stored twice.
func check(t *testing.T, acked []int64, counts map[string]int) {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no hit was acknowledged")
	}
	lost, dups := 0, 0
	for _, n := range acked {
		if counts[fmt.Sprintf("/p/%d", n)] == 0 {
			lost++
		}
	}
	for path, n := range counts {
		if n > 1 {
			if dups++; dups < 5 {
				t.Errorf("%s stored %d times", path, n)
			}
		}
	}
	t.Logf("acknowledged %d, rows %d, lost %d, duplicated %d", len(acked), sum(counts), lost, dups)
	if lost > 0 || dups > 0 {
		t.Fatalf("%d acknowledged hits lost, %d stored twice", lost, dups)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// load posts pageviews with unique paths (/p/N) and remembers which were
// acknowledged.
type load struct {
	url, site string
	next      atomic.Int64

	mu       sync.Mutex
	acked    []int64
	statuses map[int]int
	errors   int
}

func newLoad(url, site string) *load {
	return &load{url: url, site: site, statuses: map[int]int{}}
}

func (l *load) run(ctx context.Context, workers int) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				l.send(client)
			}
		})
	}
	wg.Wait()
}

func (l *load) send(client *http.Client) {
	n := l.next.Add(1)
	body, _ := json.Marshal(map[string]any{
		"site": l.site, "type": "pageview", "url": fmt.Sprintf("https://%s/p/%d", domain, n), "w": 1280,
	})
	req, _ := http.NewRequest(http.MethodPost, l.url+"/api/collect", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", desktopUA)
	res, err := client.Do(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errors++
		return
	}
	res.Body.Close()
	l.statuses[res.StatusCode]++
	if res.StatusCode == http.StatusAccepted && res.Header.Get(hooks.DroppedHeader) == "" {
		l.acked = append(l.acked, n)
	}
}

func (l *load) ackedSnapshot() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.acked...)
}
