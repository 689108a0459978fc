package realtime_test

import (
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// TestAdminRole checks the live topic for a site's admin: admitted while an
// admin, unsubscribed at once when removed.
func TestAdminRole(t *testing.T) {
	app, live, base := start(t, realtime.Config{})
	site, err := app.FindRecordById("sites", livetest.Site)
	if err != nil {
		t.Fatal(err)
	}
	admin := site.GetStringSlice("members")
	site.Set("admins", admin)
	site.Set("members", []string{})
	if err := app.Save(site); err != nil {
		t.Fatal(err)
	}

	c := livetest.Connect(t, base)
	c.Subscribe(t, livetest.Token(t, app, "users", livetest.Member), realtime.Topic(livetest.Public), realtime.Topic(livetest.Site))
	delivered := func() bool {
		vid, stop := visitor(), visitor()
		live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/"))
		live.Publish(livetest.Hit(livetest.Public, stop, event.Pageview, "/"))
		for _, e := range collectUntil(t, c, realtime.VisitorKey(livetest.Public, stop)) {
			if m := e.Decode(t); m["visitor"] == realtime.VisitorKey(livetest.Site, vid) {
				return true
			}
		}
		return false
	}
	if !delivered() {
		t.Fatal("the admin did not receive the site's arrival")
	}

	site.Set("admins", []string{})
	if err := app.Save(site); err != nil {
		t.Fatal(err)
	}
	if _, ok := subscriptionsOf(t, app, c.ID)[realtime.Topic(livetest.Site)]; ok {
		t.Fatal("the removed admin is still subscribed")
	}
	if delivered() {
		t.Fatal("the removed admin still receives the site's messages")
	}
}
