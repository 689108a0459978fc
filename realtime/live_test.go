package realtime_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var visitors atomic.Uint64

// visitor returns a fresh visitor id.
func visitor() uint64 { return visitors.Add(1) + uint64(time.Now().UnixNano())&0xffffff<<20 }

// start returns a test app with the live layer registered and served.
func start(t testing.TB, cfg realtime.Config) (*tests.TestApp, *realtime.Live, string) {
	t.Helper()
	app := livetest.NewApp(t)
	live, err := realtime.Register(app, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	srv := livetest.Serve(t, app)
	livetest.Ready(t, live)
	return app, live, srv.URL
}

// sdkTopic is a topic as the JS SDK sends it when subscribe() gets options.
func sdkTopic(site string) string {
	return realtime.Topic(site) + "?options=" + url.QueryEscape(`{"query":{"fields":"type"},"headers":{"X-Dash":"1"}}`)
}

// collectUntil reads events until the arrival of visitor stop, returning
// every event before it.
func collectUntil(t *testing.T, c *livetest.Client, stop string) []livetest.Event {
	t.Helper()
	var got []livetest.Event
	for {
		e := c.Next(t)
		m := e.Decode(t)
		if m["type"] == realtime.TypeArrival && m["visitor"] == stop {
			return got
		}
		got = append(got, e)
	}
}

func TestSubscribeAuthorization(t *testing.T) {
	app, live, base := start(t, realtime.Config{})
	owner := livetest.Token(t, app, "users", livetest.Owner)
	member := livetest.Token(t, app, "users", livetest.Member)
	stranger := livetest.Token(t, app, "users", livetest.Stranger)
	superuser := livetest.Token(t, app, core.CollectionNameSuperusers, "test@example.com")

	cases := []struct {
		name  string
		token string
		subs  []string
		// want maps each site a hit is published for to the subscription
		// key its messages must arrive under; "" means nothing may arrive.
		want map[string]string
	}{
		{"owner", owner, []string{realtime.Topic(livetest.Site)}, map[string]string{livetest.Site: realtime.Topic(livetest.Site)}},
		{"member", member, []string{realtime.Topic(livetest.Site)}, map[string]string{livetest.Site: realtime.Topic(livetest.Site)}},
		{"superuser", superuser, []string{realtime.Topic(livetest.Other)}, map[string]string{livetest.Other: realtime.Topic(livetest.Other)}},
		{"stranger is refused", stranger, []string{realtime.Topic(livetest.Site)}, map[string]string{livetest.Site: ""}},
		{"guest is refused", "", []string{realtime.Topic(livetest.Site)}, map[string]string{livetest.Site: ""}},
		{"guest watches a public site", "", nil, map[string]string{livetest.Public: realtime.Topic(livetest.Public)}},
		{"stranger watches a public site", stranger, nil, map[string]string{livetest.Public: realtime.Topic(livetest.Public)}},
		{"option-suffixed key", owner, []string{sdkTopic(livetest.Site)}, map[string]string{livetest.Site: sdkTopic(livetest.Site)}},
		{"forbidden topics are dropped, allowed ones kept", owner,
			[]string{realtime.Topic(livetest.Site), realtime.Topic(livetest.Other), "analytics/live/", "analytics/live/x/y"},
			map[string]string{livetest.Site: realtime.Topic(livetest.Site), livetest.Other: ""}},
		{"unknown site", owner, []string{realtime.Topic("nosuchsite0000")}, map[string]string{"nosuchsite0000": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := livetest.Connect(t, base)
			// Everyone may watch the public site: its hit, published last,
			// proves that everything published before it was delivered.
			subs := append([]string{realtime.Topic(livetest.Public)}, tc.subs...)
			if status := c.Subscribe(t, tc.token, subs...); status != 204 {
				t.Fatalf("subscribe: status %d, want 204", status)
			}

			keys := subscriptionsOf(t, app, c.ID)
			sent := map[string]string{} // site → visitor key
			for site, key := range tc.want {
				if _, ok := keys[key]; key != "" && !ok {
					t.Fatalf("client lacks the allowed subscription %q: %v", key, keys)
				}
				if key == "" {
					for k := range keys {
						if strings.Contains(k, site) {
							t.Fatalf("client still holds the forbidden subscription %q", k)
						}
					}
				}
				vid := visitor()
				live.Publish(livetest.Hit(site, vid, event.Pageview, "/"))
				sent[site] = realtime.VisitorKey(site, vid)
			}
			stop := visitor()
			live.Publish(livetest.Hit(livetest.Public, stop, event.Pageview, "/"))

			got := collectUntil(t, c, realtime.VisitorKey(livetest.Public, stop))
			for site, key := range tc.want {
				found := false
				for _, e := range got {
					m := e.Decode(t)
					if m["site"] != site {
						continue
					}
					if key == "" {
						t.Fatalf("forbidden site %s delivered %q: %s", site, e.Name, e.Data)
					}
					if m["type"] == realtime.TypeArrival && m["visitor"] == sent[site] {
						if e.Name != key {
							t.Fatalf("arrival under %q, want %q", e.Name, key)
						}
						found = true
					}
				}
				if key != "" && !found {
					t.Fatalf("no arrival for %s before the sentinel; got %d events", site, len(got))
				}
			}
		})
	}
}

func subscriptionsOf(t *testing.T, app core.App, clientID string) map[string]struct{} {
	t.Helper()
	client, err := app.SubscriptionsBroker().ClientById(clientID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]struct{}{}
	for k := range client.Subscriptions() {
		out[k] = struct{}{}
	}
	return out
}

func TestAccessChanges(t *testing.T) {
	app, live, base := start(t, realtime.Config{})
	member := livetest.Token(t, app, "users", livetest.Member)
	owner := livetest.Token(t, app, "users", livetest.Owner)

	// delivered publishes a hit for site and then one for the public site,
	// and reports whether the first arrived before the second.
	delivered := func(t *testing.T, c *livetest.Client, site string) bool {
		vid, stop := visitor(), visitor()
		live.Publish(livetest.Hit(site, vid, event.Pageview, "/"))
		live.Publish(livetest.Hit(livetest.Public, stop, event.Pageview, "/"))
		for _, e := range collectUntil(t, c, realtime.VisitorKey(livetest.Public, stop)) {
			if m := e.Decode(t); m["visitor"] == realtime.VisitorKey(site, vid) {
				return true
			}
		}
		return false
	}

	t.Run("member removed", func(t *testing.T) {
		c := livetest.Connect(t, base)
		c.Subscribe(t, member, realtime.Topic(livetest.Public), realtime.Topic(livetest.Site))
		if !delivered(t, c, livetest.Site) {
			t.Fatal("member did not receive the site's arrival")
		}
		site, err := app.FindRecordById("sites", livetest.Site)
		if err != nil {
			t.Fatal(err)
		}
		site.Set("members", []string{})
		if err := app.Save(site); err != nil {
			t.Fatal(err)
		}
		if _, ok := subscriptionsOf(t, app, c.ID)[realtime.Topic(livetest.Site)]; ok {
			t.Fatal("former member is still subscribed")
		}
		if delivered(t, c, livetest.Site) {
			t.Fatal("former member still receives the site's messages")
		}
	})

	t.Run("view rule tightened", func(t *testing.T) {
		c := livetest.Connect(t, base)
		c.Subscribe(t, owner, realtime.Topic(livetest.Public), realtime.Topic(livetest.Site))
		if !delivered(t, c, livetest.Site) {
			t.Fatal("owner did not receive the site's arrival")
		}
		col, err := app.FindCollectionByNameOrId("sites")
		if err != nil {
			t.Fatal(err)
		}
		orig := *col.ViewRule
		rule := "@request.auth.collectionName = '_superusers'" // owners lose access
		col.ViewRule = &rule
		if err := app.Save(col); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			col.ViewRule = &orig
			if err := app.Save(col); err != nil {
				t.Error(err)
			}
		})
		if delivered(t, c, livetest.Site) {
			t.Fatal("owner still receives messages after the rule change")
		}
	})

	t.Run("site no longer public", func(t *testing.T) {
		probe := livetest.CreateSite(t, app, "liveprobe000001", livetest.Stranger, nil, true)
		c := livetest.Connect(t, base)
		c.Subscribe(t, "", realtime.Topic(livetest.Public), realtime.Topic(probe.Id))
		if !delivered(t, c, probe.Id) {
			t.Fatal("guest did not receive the public site's arrival")
		}
		probe.Set("public", false)
		if err := app.Save(probe); err != nil {
			t.Fatal(err)
		}
		if _, ok := subscriptionsOf(t, app, c.ID)[realtime.Topic(probe.Id)]; ok {
			t.Fatal("guest is still subscribed to a site that is no longer public")
		}
		if delivered(t, c, probe.Id) {
			t.Fatal("guest still receives the messages of a private site")
		}
	})

	t.Run("site deleted", func(t *testing.T) {
		superuser := livetest.Token(t, app, core.CollectionNameSuperusers, "test@example.com")
		c := livetest.Connect(t, base)
		c.Subscribe(t, superuser, realtime.Topic(livetest.Public), realtime.Topic(livetest.Other))
		if !delivered(t, c, livetest.Other) {
			t.Fatal("superuser did not receive the site's arrival")
		}
		site, err := app.FindRecordById("sites", livetest.Other)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Delete(site); err != nil {
			t.Fatal(err)
		}
		if _, ok := subscriptionsOf(t, app, c.ID)[realtime.Topic(livetest.Other)]; ok {
			t.Fatal("still subscribed to a deleted site")
		}
	})
}

// nextCount returns the visitors of the next count message equal to want,
// skipping other counts (a count may be pushed before a hit is applied).
func nextCount(t *testing.T, c *livetest.Client, want int) {
	t.Helper()
	for {
		_, m := c.NextType(t, realtime.TypeCount)
		if int(m["visitors"].(float64)) == want {
			return
		}
	}
}

func TestMessagesAndCount(t *testing.T) {
	app, live, base := start(t, realtime.Config{LeaveGrace: 200 * time.Millisecond})
	c := livetest.Connect(t, base)
	c.Subscribe(t, livetest.Token(t, app, "users", livetest.Owner), realtime.Topic(livetest.Site))
	nextCount(t, c, 0) // pushed on subscribe

	a, b := visitor(), visitor()
	ka := realtime.VisitorKey(livetest.Site, a)

	hit := livetest.Hit(livetest.Site, a, event.Pageview, "/")
	hit.Title = "Home"
	live.Publish(hit)
	_, m := c.NextType(t, realtime.TypeArrival)
	for k, want := range map[string]any{
		"site": livetest.Site, "visitor": ka, "page": "/", "title": "Home", "newSession": true,
		"referrer": "news.ycombinator.com", "country": "DE", "region": "BE", "city": "Berlin",
		"lat": 52.52, "lon": 13.405, "device": "desktop", "browser": "Firefox", "os": "Linux",
	} {
		if m[k] != want {
			t.Errorf("arrival %s = %v, want %v", k, m[k], want)
		}
	}
	nextCount(t, c, 1)

	// A second tab: same visitor, another page. Still one visitor.
	second := livetest.Hit(livetest.Site, a, event.Pageview, "/pricing")
	second.Entry = false
	live.Publish(second)
	if _, m := c.NextType(t, realtime.TypePageview); m["visitor"] != ka || m["page"] != "/pricing" || m["from"] != "/" {
		t.Fatalf("pageview %v", m)
	}

	ev := livetest.Hit(livetest.Site, a, event.Custom, "/pricing")
	ev.Name, ev.Props = "signup", map[string]string{"plan": "pro"}
	live.Publish(ev)
	if _, m := c.NextType(t, realtime.TypeEvent); m["name"] != "signup" || m["props"].(map[string]any)["plan"] != "pro" {
		t.Fatalf("event %v", m)
	}

	live.Publish(livetest.Hit(livetest.Site, b, event.Pageview, "/docs"))
	nextCount(t, c, 2)

	live.Publish(livetest.Hit(livetest.Site, a, event.Leave, "/pricing"))
	if _, m := c.NextType(t, realtime.TypeLeave); m["visitor"] != ka || m["reason"] != realtime.LeaveClosed {
		t.Fatalf("leave %v", m)
	}
	nextCount(t, c, 1)
}

func TestExpiry(t *testing.T) {
	app, live, base := start(t, realtime.Config{Window: time.Second, LeaveGrace: 100 * time.Millisecond})
	c := livetest.Connect(t, base)
	c.Subscribe(t, livetest.Token(t, app, "users", livetest.Owner), realtime.Topic(livetest.Site))
	vid := visitor()
	live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/"))
	nextCount(t, c, 1)
	// No heartbeat: the visitor times out and is announced as gone; the
	// count and the leave come in either order.
	var left, zero bool
	for !left || !zero {
		m := c.Next(t).Decode(t)
		switch m["type"] {
		case realtime.TypeLeave:
			if m["visitor"] != realtime.VisitorKey(livetest.Site, vid) || m["reason"] != realtime.LeaveTimeout {
				t.Fatalf("leave %v", m)
			}
			left = true
		case realtime.TypeCount:
			zero = m["visitors"] == 0.0
		}
	}
}

// TestSlowClient: a client that stops reading must not hold back others.
// Its messages pile up in its own buffer and the oldest are dropped; once
// it reads again it catches up with the newest, written in batches.
func TestSlowClient(t *testing.T) {
	app, live, base := start(t, realtime.Config{QueueSize: 1 << 16})
	token := livetest.Token(t, app, "users", livetest.Owner)

	stuck := make(chan struct{})
	slowEvents := make(chan livetest.Event, 1<<14)
	var first atomic.Bool
	slow := &livetest.Client{}
	slowID := livetest.ConnectFunc(t, base, slow, func(e livetest.Event) {
		if !first.Swap(true) {
			<-stuck // stops reading after the first message
		}
		slowEvents <- e
	})
	var once sync.Once
	unstick := func() { once.Do(func() { close(stuck) }) }
	t.Cleanup(unstick) // runs before the connection's own cleanup
	livetest.SubscribeID(t, base, slowID, token, realtime.Topic(livetest.Site))

	fast := livetest.Connect(t, base)
	fast.Subscribe(t, token, realtime.Topic(livetest.Site))

	dropped := value(t, metrics.LiveDropped)
	// Big custom events, so the slow connection's socket buffers fill fast.
	props := map[string]string{}
	for i := range 8 {
		props[string(rune('a'+i))] = strings.Repeat("x", 500)
	}
	// Bursts the fast client can absorb (each hit makes an arrival and an
	// event message); the slow one falls further behind with each.
	var last string
	for range 30 {
		for range 100 {
			vid := visitor()
			h := livetest.Hit(livetest.Site, vid, event.Custom, "/")
			h.Name, h.Props = "big", props
			live.Publish(h)
			last = realtime.VisitorKey(livetest.Site, vid)
		}
		for i := range 100 {
			if e, _ := fast.NextType(t, realtime.TypeEvent); e.Name != realtime.Topic(livetest.Site) {
				t.Fatalf("event %d under %q", i, e.Name)
			}
		}
	}
	if d := value(t, metrics.LiveDropped) - dropped; d == 0 {
		t.Fatal("the slow client dropped nothing")
	}

	unstick()
	for {
		select {
		case e := <-slowEvents:
			m := e.Decode(t) // batched events must still be separate, valid events
			if e.Name != realtime.Topic(livetest.Site) {
				t.Fatalf("slow client got an event named %q", e.Name)
			}
			if m["type"] == realtime.TypeEvent && m["visitor"] == last {
				return
			}
		case <-time.After(livetest.Wait):
			t.Fatal("the slow client never caught up with the newest message")
		}
	}
}

// TestPublishAfterClose: Publish must be safe (and a no-op) once closed.
func TestPublishAfterClose(t *testing.T) {
	_, live, _ := start(t, realtime.Config{})
	live.Close()
	live.Publish(livetest.Hit(livetest.Site, 1, event.Pageview, "/"))
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDisablePush(t *testing.T) {
	app, _, base := start(t, realtime.Config{DisablePush: true})
	c := livetest.Connect(t, base)
	if status := c.Subscribe(t, livetest.Token(t, app, "users", livetest.Owner), realtime.Topic(livetest.Site), "sites"); status != 204 {
		t.Fatalf("status %d", status)
	}
	keys := subscriptionsOf(t, app, c.ID)
	if _, ok := keys[realtime.Topic(livetest.Site)]; ok {
		t.Fatal("live topic kept with push disabled")
	}
	if _, ok := keys["sites"]; !ok {
		t.Fatal("a record topic was dropped too")
	}
}

// TestTwoInstances: two app instances share Redis; a hit accepted by one
// reaches a dashboard connected to the other, with the shared count.
func TestTwoInstances(t *testing.T) {
	rdb := testutil.Redis(t)
	cfg := realtime.Config{Redis: rdb, Channel: testutil.Unique("pltest-live-"), KeyPrefix: testutil.RedisPrefix(t, "pltest")}

	_, liveA, _ := start(t, cfg)
	appB, liveB, baseB := start(t, cfg)

	c := livetest.Connect(t, baseB)
	c.Subscribe(t, livetest.Token(t, appB, "users", livetest.Owner), realtime.Topic(livetest.Site))
	nextCount(t, c, 0)

	a, b := visitor(), visitor()
	liveA.Publish(livetest.Hit(livetest.Site, a, event.Pageview, "/"))
	if _, m := c.NextType(t, realtime.TypeArrival); m["visitor"] != realtime.VisitorKey(livetest.Site, a) {
		t.Fatalf("arrival %v", m)
	}
	nextCount(t, c, 1)

	// The same visitor's next hit lands on the other instance: one visitor, a page change.
	next := livetest.Hit(livetest.Site, a, event.Pageview, "/b")
	next.Entry = false
	liveB.Publish(next)
	if _, m := c.NextType(t, realtime.TypePageview); m["page"] != "/b" || m["from"] != "/" {
		t.Fatalf("pageview %v", m)
	}
	liveA.Publish(livetest.Hit(livetest.Site, b, event.Pageview, "/"))
	nextCount(t, c, 2)

	st, err := liveA.Status(context.Background(), livetest.Site, time.UTC, 10)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 2 || len(st.Arrivals) != 2 || st.Arrivals[1].Page != "/b" {
		t.Fatalf("status on the first instance: %+v", st)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestUnwatchedSitesPublishNothing checks that with Redis an instance puts no
// message on the channel for a site no instance watches, and that a
// subscription on another instance is honoured from the hit sent right after
// it.
func TestUnwatchedSitesPublishNothing(t *testing.T) {
	rdb := testutil.Redis(t)
	cfg := realtime.Config{Redis: rdb, Channel: testutil.Unique("pltest-live-"), KeyPrefix: testutil.RedisPrefix(t, "pltest")}

	raw := rdb.Subscribe(context.Background(), cfg.Channel)
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	channel := raw.Channel()

	_, liveA, _ := start(t, cfg)
	appB, _, baseB := start(t, cfg)

	// Nobody watches anything: these hits make no message.
	for range 20 {
		liveA.Publish(livetest.Hit(livetest.Site, visitor(), event.Pageview, "/"))
	}

	// A dashboard on B, then at once a hit for its site on A: its arrival
	// is published, and is the first site message on the channel.
	c := livetest.Connect(t, baseB)
	c.Subscribe(t, livetest.Token(t, appB, "users", livetest.Owner), realtime.Topic(livetest.Public))
	v := visitor()
	liveA.Publish(livetest.Hit(livetest.Public, v, event.Pageview, "/"))
	if _, m := c.NextType(t, realtime.TypeArrival); m["visitor"] != realtime.VisitorKey(livetest.Public, v) {
		t.Fatalf("arrival %v", m)
	}

	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-channel:
			site, _, _ := strings.Cut(m.Payload, "\n")
			switch site {
			case "*": // announcements between instances
				continue
			case livetest.Public:
				return
			default:
				t.Fatalf("a message for unwatched site %q was published: %q", site, m.Payload)
			}
		case <-timeout:
			t.Fatal("the watched site's arrival never reached the channel")
		}
	}
}

// A watcher's cost does not depend on how many keys it sends: a client
// holds one key per site (the last it sent), for at most MaxSites sites,
// and gets each message once; an address holds at most MaxConnsPerAddr
// connections.
func TestHostileWatcher(t *testing.T) {
	app, live, base := start(t, realtime.Config{MaxSites: 2, MaxConnsPerAddr: 3})
	superuser := livetest.Token(t, app, core.CollectionNameSuperusers, "test@example.com")

	c := livetest.Connect(t, base)
	var subs []string
	for i := range 200 {
		subs = append(subs, realtime.Topic(livetest.Public)+"?options="+url.QueryEscape(fmt.Sprintf(`{"query":{"k":"%d"}}`, i)))
	}
	last := subs[len(subs)-1]
	subs = append(subs, realtime.Topic(livetest.Site), realtime.Topic(livetest.Other))
	if status := c.Subscribe(t, superuser, subs...); status != 204 {
		t.Fatalf("subscribe: status %d", status)
	}
	keys := subscriptionsOf(t, app, c.ID)
	want := map[string]struct{}{last: {}, realtime.Topic(livetest.Site): {}}
	if !maps.Equal(keys, want) {
		t.Fatalf("client holds %v, want %v", slices.Collect(maps.Keys(keys)), slices.Collect(maps.Keys(want)))
	}

	vid := visitor()
	live.Publish(livetest.Hit(livetest.Public, vid, event.Pageview, "/"))
	stop := visitor()
	live.Publish(livetest.Hit(livetest.Site, stop, event.Pageview, "/"))
	arrivals := 0
	for _, e := range collectUntil(t, c, realtime.VisitorKey(livetest.Site, stop)) {
		if m := e.Decode(t); m["type"] == realtime.TypeArrival && m["visitor"] == realtime.VisitorKey(livetest.Public, vid) {
			arrivals++
			if e.Name != last {
				t.Fatalf("arrival under %q, want %q", e.Name, last)
			}
		}
	}
	if arrivals != 1 {
		t.Fatalf("%d arrivals for one hit, want 1", arrivals)
	}

	// c is the first connection from this address; two more fit.
	livetest.Connect(t, base)
	third := livetest.Connect(t, base)
	res, err := http.Get(base + "/api/realtime")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth connection: status %d, want 429", res.StatusCode)
	}
	third.Close()
	deadline := time.Now().Add(livetest.Wait)
	for {
		res, err := http.Get(base + "/api/realtime")
		if err != nil {
			t.Fatal(err)
		}
		status := res.StatusCode
		res.Body.Close()
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection still counts: status %d", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
