package realtime_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// shareTopic is a live topic as the dashboard's share page subscribes to it.
func shareTopic(site, token, proof string) string {
	opts := `{"query":{"share":"` + token + `","proof":"` + proof + `"}}`
	return realtime.Topic(site) + "?options=" + url.QueryEscape(opts)
}

func newShare(t *testing.T, app core.App, site string, live bool, password string, expires time.Time) *core.Record {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(access.SharesCollection)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Set("site", site)
	r.Set("live", live)
	if password != "" {
		r.Set("password", password)
	}
	if !expires.IsZero() {
		r.Set("expires", expires)
	}
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestShareLinksLive: a share link with the live flag opens its one site's
// live topic to a guest, over a real SSE connection, and deleting or
// expiring the share stops the delivery at once.
func TestShareLinksLive(t *testing.T) {
	app, live, base := start(t, realtime.Config{})
	if err := hooks.RegisterShares(app); err != nil { // tokens on create
		t.Fatal(err)
	}

	// delivered publishes a hit for site, then one for the public site, and
	// reports whether the first arrived before the second.
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
	holds := func(t *testing.T, c *livetest.Client, key string) bool {
		_, ok := subscriptionsOf(t, app, c.ID)[key]
		return ok
	}
	watch := func(t *testing.T, auth string, keys ...string) *livetest.Client {
		c := livetest.Connect(t, base)
		if status := c.Subscribe(t, auth, append([]string{realtime.Topic(livetest.Public)}, keys...)...); status != 204 {
			t.Fatalf("subscribe: status %d", status)
		}
		return c
	}

	t.Run("live share opens its site only", func(t *testing.T) {
		s := newShare(t, app, livetest.Site, true, "", time.Time{})
		tok := s.GetString("token")
		c := watch(t, "", shareTopic(livetest.Site, tok, ""), shareTopic(livetest.Other, tok, ""))
		if !holds(t, c, shareTopic(livetest.Site, tok, "")) || !delivered(t, c, livetest.Site) {
			t.Fatal("the share's site is not delivered")
		}
		if holds(t, c, shareTopic(livetest.Other, tok, "")) || delivered(t, c, livetest.Other) {
			t.Fatal("the share opened another site")
		}
	})

	t.Run("share without live flag", func(t *testing.T) {
		s := newShare(t, app, livetest.Site, false, "", time.Time{})
		c := watch(t, "", shareTopic(livetest.Site, s.GetString("token"), ""))
		if delivered(t, c, livetest.Site) {
			t.Fatal("a share without the live flag opened the live topic")
		}
	})

	t.Run("password", func(t *testing.T) {
		s := newShare(t, app, livetest.Site, true, "s3cret-pass", time.Time{})
		tok := s.GetString("token")
		c := watch(t, "", shareTopic(livetest.Site, tok, "wrong"))
		if delivered(t, c, livetest.Site) {
			t.Fatal("delivered without the password's proof")
		}
		s, _ = app.FindRecordById(access.SharesCollection, s.Id)
		c = watch(t, "", shareTopic(livetest.Site, tok, access.Proof(s)))
		if !delivered(t, c, livetest.Site) {
			t.Fatal("not delivered with the proof")
		}
	})

	t.Run("API keys do not open live topics", func(t *testing.T) {
		col, _ := app.FindCollectionByNameOrId(access.APIKeysCollection)
		key, hash := access.NewKey()
		r := core.NewRecord(col)
		r.Load(map[string]any{"name": "k", "sites": []string{livetest.Site}, "owner": livetest.UserID(t, app, livetest.Owner), "hash": hash})
		if err := app.Save(r); err != nil {
			t.Fatal(err)
		}
		c := watch(t, "Bearer "+key, realtime.Topic(livetest.Site))
		if delivered(t, c, livetest.Site) {
			t.Fatal("an API key opened a live topic")
		}
	})

	t.Run("revoked while open", func(t *testing.T) {
		s := newShare(t, app, livetest.Site, true, "", time.Time{})
		key := shareTopic(livetest.Site, s.GetString("token"), "")
		c := watch(t, "", key)
		if !delivered(t, c, livetest.Site) {
			t.Fatal("not delivered before the revocation")
		}
		if err := app.Delete(s); err != nil {
			t.Fatal(err)
		}
		if holds(t, c, key) {
			t.Fatal("still subscribed after the share was deleted")
		}
		if delivered(t, c, livetest.Site) {
			t.Fatal("still delivered after the share was deleted")
		}
	})

	t.Run("live flag turned off while open", func(t *testing.T) {
		s := newShare(t, app, livetest.Site, true, "", time.Time{})
		key := shareTopic(livetest.Site, s.GetString("token"), "")
		c := watch(t, "", key)
		s.Set("live", false)
		if err := app.Save(s); err != nil {
			t.Fatal(err)
		}
		if holds(t, c, key) || delivered(t, c, livetest.Site) {
			t.Fatal("still delivered after the live flag went off")
		}
	})

	t.Run("expires while open", func(t *testing.T) {
		s := newShare(t, app, livetest.Site, true, "", time.Now().Add(time.Second))
		key := shareTopic(livetest.Site, s.GetString("token"), "")
		c := watch(t, "", key)
		if !holds(t, c, key) {
			t.Fatal("not subscribed before the expiry")
		}
		deadline := time.Now().Add(livetest.Wait)
		for holds(t, c, key) {
			if time.Now().After(deadline) {
				t.Fatal("still subscribed after the share expired")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if delivered(t, c, livetest.Site) {
			t.Fatal("still delivered after the share expired")
		}
	})
}
