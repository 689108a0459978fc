package hooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// TestAlertFiresOnce drives a site's live count across its alert's
// threshold: the alert fires (a mail to the owner, a POST to a real
// webhook server) when the count reaches it from below, not while it
// stays above, not on a new crossing within the hour, and again after it.
func TestAlertFiresOnce(t *testing.T) {
	app, err := tests.NewTestApp(template(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	live, err := realtime.Register(app, realtime.Config{LeaveGrace: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })

	posts := make(chan map[string]any, 10)
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var v map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &v) != nil {
			t.Errorf("webhook got %s %s: %s", r.Method, r.Header.Get("Content-Type"), body)
		}
		posts <- v
	}))
	t.Cleanup(webhook.Close)

	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	// The default client refuses loopback addresses such as the test server's.
	cfg := hooks.AlertsConfig{Live: live, Dashboard: "/", Now: func() time.Time { return now }, Client: webhook.Client()}
	if err := hooks.RegisterAlerts(app, cfg); err != nil {
		t.Fatal(err)
	}
	col, err := app.FindCollectionByNameOrId(hooks.AlertsCollection)
	if err != nil {
		t.Fatal(err)
	}
	alert := core.NewRecord(col)
	alert.Load(map[string]any{"site": siteID, "threshold": 2, "email": true, "webhook": webhook.URL + "/hook"})
	if err := app.Save(alert); err != nil {
		t.Fatal(err)
	}

	// count waits until the live layer counts n visitors on the site.
	count := func(n int) {
		t.Helper()
		deadline := time.Now().Add(livetest.Wait)
		for {
			c, err := live.Counts(context.Background(), siteID)
			if err != nil {
				t.Fatal(err)
			}
			if c[siteID] == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("live count %d, want %d", c[siteID], n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	visit := func(visitor uint64, typ string) { live.Publish(livetest.Hit(siteID, visitor, typ, "/")) }
	fired := func(want int) {
		t.Helper()
		runJob(t, app, "pocketlyticsAlerts")
		if n := app.TestMailer.TotalSend(); n != want {
			t.Fatalf("%d alert mails, want %d", n, want)
		}
		if len(posts) > 0 && want == 0 {
			t.Fatalf("the webhook got a POST")
		}
	}

	fired(0) // no visitors: below
	visit(1, event.Pageview)
	visit(2, event.Pageview)
	count(2)
	fired(1)
	msg := app.TestMailer.LastMessage()
	if msg.To[0].Address != ownerID+"@example.com" || msg.Subject != "Example: 2 visitors online" || !strings.Contains(msg.Text, "threshold of 2") {
		t.Fatalf("alert mail %q to %v:\n%s", msg.Subject, msg.To, msg.Text)
	}
	select {
	case p := <-posts:
		site, _ := p["site"].(map[string]any)
		if p["type"] != "traffic_alert" || p["count"] != 2.0 || p["threshold"] != 2.0 || site["id"] != siteID || site["name"] != "Example" {
			t.Fatalf("webhook body %v", p)
		}
	case <-time.After(livetest.Wait):
		t.Fatal("the webhook got nothing")
	}
	if r, _ := app.FindRecordById(hooks.AlertsCollection, alert.Id); !r.GetDateTime("lastFired").Time().Equal(now) {
		t.Fatalf("lastFired %v, want %v", r.GetDateTime("lastFired"), now)
	}

	now = now.Add(time.Minute)
	fired(1) // still above: no new crossing

	visit(2, event.Leave)
	count(1)
	now = now.Add(29 * time.Minute)
	fired(1)
	visit(3, event.Pageview)
	count(2)
	fired(1) // crossed again within the hour
	if len(posts) != 0 {
		t.Fatal("the webhook was called within the hour")
	}

	visit(3, event.Leave)
	count(1)
	now = now.Add(31 * time.Minute)
	fired(1)
	visit(4, event.Pageview)
	count(2)
	fired(2) // an hour after the first
	select {
	case <-posts:
	case <-time.After(livetest.Wait):
		t.Fatal("the webhook got nothing the second time")
	}
}
