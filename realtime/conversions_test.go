package realtime_test

import (
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/migrations"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

func createGoal(t testing.TB, app core.App, site, name, ev, page string, props map[string]string) *core.Record {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(migrations.GoalsCollectionId)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Set("site", site)
	r.Set("name", name)
	r.Set("event", ev)
	r.Set("page", page)
	if props != nil {
		r.Set("props", props)
	}
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConversions: hits that reach a goal are followed by a conversion
// message over real SSE, by the store's rules, with goals created and
// deleted at runtime; in process and through Redis.
func TestConversions(t *testing.T) {
	for _, mode := range []string{"memory", "redis"} {
		t.Run(mode, func(t *testing.T) {
			cfg := realtime.Config{}
			if mode == "redis" {
				cfg = realtime.Config{Redis: testutil.Redis(t), Channel: testutil.Unique("pltest-live-"), KeyPrefix: testutil.RedisPrefix(t, "pltest")}
			}
			app, live, base := start(t, cfg)
			owner := livetest.Token(t, app, "users", livetest.Owner)
			signup := createGoal(t, app, livetest.Site, "Signup", "signup", "", map[string]string{"plan": "pro"})
			createGoal(t, app, livetest.Site, "Thanks", "", "/thank-you*", nil)
			createGoal(t, app, livetest.Other, "Elsewhere", "", "/*", nil)

			c := livetest.Connect(t, base)
			c.Subscribe(t, owner, realtime.Topic(livetest.Site))

			// next returns the conversions published before the arrival of
			// a fresh marker visitor.
			next := func() []map[string]any {
				t.Helper()
				stop := visitor()
				live.Publish(livetest.Hit(livetest.Site, stop, event.Pageview, "/stop"))
				var convs []map[string]any
				for _, e := range collectUntil(t, c, realtime.VisitorKey(livetest.Site, stop)) {
					if m := e.Decode(t); m["type"] == realtime.TypeConversion {
						convs = append(convs, m)
					}
				}
				return convs
			}
			custom := func(vid uint64, name string, props map[string]string) event.Event {
				h := livetest.Hit(livetest.Site, vid, event.Custom, "/pricing")
				h.Name, h.Props, h.Entry = name, props, false
				return h
			}

			vid := visitor()
			live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/pricing"))
			buy := custom(vid, "signup", map[string]string{"plan": "pro", "ref": "x"})
			buy.RevenueAmount, buy.RevenueCurrency = 49_900_000, "EUR"
			live.Publish(buy)
			live.Publish(custom(vid, "signup", map[string]string{"plan": "free"}))
			got := next()
			if len(got) != 1 {
				t.Fatalf("conversions = %v, want the pro signup only", got)
			}
			want := map[string]any{
				"goal": "Signup", "name": "signup", "page": "/pricing", "revenue": "49.90", "currency": "EUR",
				"city": "Berlin", "country": "DE", "referrer": "news.ycombinator.com", "visitor": realtime.VisitorKey(livetest.Site, vid),
			}
			for k, v := range want {
				if got[0][k] != v {
					t.Errorf("conversion %s = %v, want %v", k, got[0][k], v)
				}
			}

			// A page goal: by an arrival on a pageview and by a later pageview,
			// never by an event on a matching page.
			v2 := visitor()
			live.Publish(livetest.Hit(livetest.Site, v2, event.Pageview, "/thank-you/pro"))
			ev := custom(v2, "other", nil)
			ev.Pathname = "/thank-you/again"
			live.Publish(ev)
			live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/thank-you"))
			live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/thank-you")) // a reload converts again, as in the store
			got = next()
			if len(got) != 3 || got[0]["goal"] != "Thanks" || got[1]["goal"] != "Thanks" || got[1]["page"] != "/thank-you" || got[2]["page"] != "/thank-you" {
				t.Fatalf("page conversions = %v", got)
			}

			// Goals change at runtime.
			if err := app.Delete(signup); err != nil {
				t.Fatal(err)
			}
			createGoal(t, app, livetest.Site, "Any signup", "signup", "", nil)
			live.Publish(custom(vid, "signup", map[string]string{"plan": "pro"}))
			got = next()
			if len(got) != 1 || got[0]["goal"] != "Any signup" {
				t.Fatalf("after the goal change: %v", got)
			}
		})
	}
}

// TestConversionsAccess: conversions reach exactly those who may watch the
// site's live topic: owner, member and a live share link, not a share
// without the live flag nor a stranger.
func TestConversionsAccess(t *testing.T) {
	app, live, base := start(t, realtime.Config{})
	if err := hooks.RegisterShares(app); err != nil {
		t.Fatal(err)
	}
	createGoal(t, app, livetest.Site, "Any page", "", "/*", nil)
	liveShare := newShare(t, app, livetest.Site, true, "", time.Time{}).GetString("token")
	statsShare := newShare(t, app, livetest.Site, false, "", time.Time{}).GetString("token")

	cases := []struct {
		name, auth, key string
		want            bool
	}{
		{"owner", livetest.Token(t, app, "users", livetest.Owner), realtime.Topic(livetest.Site), true},
		{"member", livetest.Token(t, app, "users", livetest.Member), realtime.Topic(livetest.Site), true},
		{"live share", "", shareTopic(livetest.Site, liveShare, ""), true},
		{"share without live", "", shareTopic(livetest.Site, statsShare, ""), false},
		{"stranger", livetest.Token(t, app, "users", livetest.Stranger), realtime.Topic(livetest.Site), false},
	}
	clients := make([]*livetest.Client, len(cases))
	for i, tc := range cases {
		clients[i] = livetest.Connect(t, base)
		clients[i].Subscribe(t, tc.auth, realtime.Topic(livetest.Public), tc.key)
	}
	vid, stop := visitor(), visitor()
	live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/thanks"))
	live.Publish(livetest.Hit(livetest.Public, stop, event.Pageview, "/"))
	for i, tc := range cases {
		got := false
		for _, e := range collectUntil(t, clients[i], realtime.VisitorKey(livetest.Public, stop)) {
			if m := e.Decode(t); m["type"] == realtime.TypeConversion && m["goal"] == "Any page" {
				got = true
			}
		}
		if got != tc.want {
			t.Errorf("%s: conversion delivered = %v, want %v", tc.name, got, tc.want)
		}
	}
}
