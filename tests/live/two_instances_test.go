// Package live tests the live layer across real app processes: two
// instances sharing Redis, each with its own PocketBase data.
package live

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
	"github.com/redis/go-redis/v9"
)

const (
	domain    = "shop.example.com"
	desktopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// TestTwoInstances runs two `pocketlytics serve` processes on one Redis, as
// a deployment behind a load balancer does. A hit accepted by A reaches a
// dashboard connected to B, and B's live count includes it.
//
// Each instance has its own data.db, so each knows only its own sites and
// users: ingest on A needs the site in A's collection (same id), and B
// authorizes the dashboard against B's sites rules. A real deployment of
// several instances therefore keeps the sites collection the same on all of
// them (or lets them share one database).
func TestTwoInstances(t *testing.T) {
	prefix := testutil.RedisPrefix(t, "pltest") + ":"
	env := []string{
		"REDIS_URL=" + testutil.RedisURL(t),
		"REDIS_PREFIX=" + prefix,
		"LIVE_CHANNEL=" + testutil.Unique("pltest-live-"),
	}
	a := testutil.StartApp(t, testutil.AppOptions{Env: env})
	b := testutil.StartApp(t, testutil.AppOptions{Env: env})

	// The dashboard's owner and site live on B.
	site, owner := b.CreateSite(t, domain)
	// A must know the site to accept its hits: same id, created by a
	// superuser for a user of A's own.
	userA, _ := a.CreateUser(t, testutil.Unique("a")+"@example.com", "user-password-123")
	a.Call(t, "POST", "/api/collections/sites/records", a.SuperuserToken(t), map[string]any{
		"id": site, "name": "Shop", "domains": []string{domain}, "owner": userA,
	}, nil, http.StatusOK)

	c := livetest.Connect(t, b.URL)
	if status := c.Subscribe(t, owner, realtime.Topic(site)); status != http.StatusNoContent {
		t.Fatalf("subscribe on B: status %d", status)
	}
	if _, m := c.NextType(t, realtime.TypeCount); m["visitors"] != 0.0 {
		t.Fatalf("first count %v, want 0", m)
	}

	collect(t, a.URL, site, "/pricing")
	_, arrival := c.NextType(t, realtime.TypeArrival)
	if arrival["site"] != site || arrival["page"] != "/pricing" {
		t.Fatalf("arrival on B of a hit posted to A: %v", arrival)
	}
	waitCount(t, c, 1)

	// The same visitor's next page lands on B: still one visitor, who moved.
	collect(t, b.URL, site, "/docs")
	_, pv := c.NextType(t, realtime.TypePageview)
	if pv["visitor"] != arrival["visitor"] || pv["page"] != "/docs" || pv["from"] != "/pricing" {
		t.Fatalf("pageview %v after arrival %v", pv, arrival)
	}
	// B had not seen the visit: its session was looked up along with the
	// hit's XADD, and B shows A's session, not a new one.
	if arrival["newSession"] != true || pv["newSession"] != nil {
		t.Fatalf("newSession: arrival %v, pageview %v; want the visit's one session", arrival["newSession"], pv["newSession"])
	}

	var st realtime.Status
	b.Call(t, "GET", "/api/analytics/sites/"+site+"/live", owner, nil, &st, http.StatusOK)
	if st.Count != 1 || len(st.Arrivals) != 1 || st.Arrivals[0].Page != "/docs" {
		t.Fatalf("B's live status: %+v", st)
	}
}

// collect posts a pageview as the tracker does.
func collect(t *testing.T, base, site, path string) {
	t.Helper()
	collectAs(t, base, site, path, desktopUA)
}

// collectAs posts a pageview with the given user agent.
func collectAs(t *testing.T, base, site, path, ua string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"site": site, "type": "pageview", "url": "https://" + domain + path,
		"referrer": "https://news.ycombinator.com/", "w": 1280,
	})
	req, err := http.NewRequest(http.MethodPost, base+"/api/collect", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", ua)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || res.Header.Get(hooks.DroppedHeader) != "" {
		t.Fatalf("collect on %s: status %d, dropped %q", base, res.StatusCode, res.Header.Get(hooks.DroppedHeader))
	}
}

// waitCount reads count messages until one says want.
func waitCount(t *testing.T, c *livetest.Client, want float64) {
	t.Helper()
	for {
		if _, m := c.NextType(t, realtime.TypeCount); m["visitors"] == want {
			return
		}
	}
}

// TestRedisOutage cuts a running app off Redis (a proxy in front of the
// shared server): ingest goes on, the dashboard's connection stays open and
// the polling route answers 503; once Redis is back, live messages resume
// without a restart.
func TestRedisOutage(t *testing.T) {
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, opts.Addr)
	prefix := testutil.RedisPrefix(t, "pltest") + ":"
	app := testutil.StartApp(t, testutil.AppOptions{Env: []string{
		"REDIS_URL=redis://" + proxy.Addr + "/" + strconv.Itoa(opts.DB),
		"REDIS_PREFIX=" + prefix,
		"LIVE_CHANNEL=" + testutil.Unique("pltest-live-"),
	}})
	site, owner := app.CreateSite(t, domain)
	c := livetest.Connect(t, app.URL)
	c.Subscribe(t, owner, realtime.Topic(site))

	visitor := 0
	// hit posts a pageview of a new visitor (another browser build) and
	// returns its page.
	hit := func() string {
		visitor++
		page := "/v/" + strconv.Itoa(visitor)
		collectAs(t, app.URL, site, page, strings.Replace(desktopUA, "131.0.0.0", "131.0."+strconv.Itoa(visitor)+".0", 1))
		return page
	}
	hit()
	c.NextType(t, realtime.TypeArrival)

	proxy.Cut()
	for range 20 {
		hit() // accepted: the spool keeps them until Redis is back
	}
	req, _ := http.NewRequest(http.MethodGet, app.URL+"/api/analytics/sites/"+site+"/live", nil)
	req.Header.Set("Authorization", owner)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("polling route while Redis is cut off: status %d, want 503", res.StatusCode)
	}

	proxy.Restore()
	// Reconnecting takes a moment: post until a new arrival gets through.
	deadline := time.Now().Add(livetest.Wait)
	for {
		page := hit()
		if arrivedOn(t, c, page, 200*time.Millisecond) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live message after Redis came back:\n%s", app.Log())
		}
	}
}

// arrivedOn reads events for up to d and reports whether an arrival on page
// was among them.
func arrivedOn(t *testing.T, c *livetest.Client, page string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		e, ok := c.Within(time.Until(deadline))
		if !ok {
			return false
		}
		if m := e.Decode(t); m["type"] == realtime.TypeArrival && m["page"] == page {
			return true
		}
	}
}
