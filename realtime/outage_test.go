package realtime_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// TestRedisOutage runs the live layer on a private redis-server that is down
// when the app starts and goes down again later. Register must neither fail
// nor wait for Redis, Publish must never block, the polling route answers
// 503 meanwhile, and live messages and counts must come back on their own
// once Redis answers (a restarted Redis has lost scripts and data).
func TestRedisOutage(t *testing.T) {
	srv := livetest.NewRedisServer(t) // not running yet
	app := livetest.NewApp(t)
	live, err := realtime.Register(app, realtime.Config{
		Redis: srv.Client(), Channel: testutil.Unique("pltest-live-"), KeyPrefix: "live",
		QueueSize: 64, LeaveGrace: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Register with Redis down: %v", err)
	}
	t.Cleanup(func() { live.Close() })
	if err := hooks.RegisterLive(app, hooks.LiveConfig{Live: live}); err != nil {
		t.Fatal(err)
	}
	base := livetest.Serve(t, app).URL
	owner := livetest.Token(t, app, "users", livetest.Owner)

	c := livetest.Connect(t, base)
	if status := c.Subscribe(t, owner, realtime.Topic(livetest.Site)); status != http.StatusNoContent {
		t.Fatalf("subscribe while Redis is down: status %d", status)
	}

	// down checks what a dashboard and the ingest route see during an outage.
	down := func(t *testing.T) {
		t.Helper()
		// Many times the queue: Publish must drop, not block (a block hangs the test).
		for range 100 * 64 {
			live.Publish(livetest.Hit(livetest.Site, visitor(), event.Pageview, "/"))
		}
		if status, _ := pollStatus(t, base, owner); status != http.StatusServiceUnavailable {
			t.Fatalf("polling route while Redis is down: status %d, want 503", status)
		}
	}
	// recovers publishes hits until one's arrival reaches the dashboard,
	// then checks the count the polling route reports. (The dashboard's count
	// message may not come: a Redis restarted empty can give the same count.)
	recovers := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(livetest.Wait)
		for {
			vid := visitor()
			live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/"))
			if arrived(t, c, realtime.VisitorKey(livetest.Site, vid), 100*time.Millisecond) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no arrival after Redis came back")
			}
		}
		if status, count := pollStatus(t, base, owner); status != http.StatusOK || count < 1 {
			t.Fatalf("polling route after Redis came back: status %d, count %d", status, count)
		}
	}

	t.Run("down at start", func(t *testing.T) {
		select {
		case <-live.Ready():
			t.Fatal("ready before Redis ran")
		default:
		}
		down(t)
	})
	t.Run("comes up", func(t *testing.T) {
		srv.Start()
		livetest.Ready(t, live)
		recovers(t)
	})
	t.Run("goes down mid-run", func(t *testing.T) {
		srv.Stop()
		down(t)
	})
	t.Run("comes back with nothing", func(t *testing.T) {
		srv.Start()
		recovers(t)
	})
}

// arrived reads events for up to d and reports whether the arrival of
// visitor was among them.
func arrived(t *testing.T, c *livetest.Client, visitor string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		e, ok := c.Within(time.Until(deadline))
		if !ok {
			return false
		}
		if m := e.Decode(t); m["type"] == realtime.TypeArrival && m["visitor"] == visitor {
			return true
		}
	}
}

// pollStatus asks the polling route for livetest.Site's state.
func pollStatus(t *testing.T, base, token string) (status, count int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/analytics/sites/"+livetest.Site+"/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st realtime.Status
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode, st.Count
}
