package analytics

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// Hit is one hit after parsing and enrichment, as it is queued and stored.
// It never holds the visitor's IP address. Its fields (`go doc
// ./internal/event Event`): SiteID, Type ("pageview", "event", "ping",
// "leave"), Name and Props (custom events), Hostname, Pathname, Title,
// ReferrerHost, Channel, UTMSource … UTMContent, Country, Region, City,
// Latitude, Longitude, Device, Browser, OS, ScreenWidth, the daily-salted
// VisitorID and SessionID, Entry, and Time and ID (leave those two alone).
type Hit = event.Event

// HitEvent is the event of OnHit.
type HitEvent struct {
	hook.Event

	App core.App

	// Request is the ingest request (POST /api/collect). Request.RealIP() is
	// the visitor's address: use it, never store it.
	Request *core.RequestEvent

	// Hit is the hit about to be queued. Handlers may change its fields.
	Hit *Hit
}

const onHitKey = "pocketlytics.onHit"

// OnHit returns the hook triggered for each hit after it is parsed and
// enriched and before it is queued: in the live view, the dashboard and the
// store, a hit is what its handlers left of it.
//
// A handler that returns without calling e.Next() drops the hit: the
// tracker gets 202 with "X-Pocketlytics-Dropped: hook", nothing is stored.
// An error is the ingest route's answer (e.g. e.Request.BadRequestError).
// Handlers run on the ingest path of every hit: keep them fast, without
// I/O per hit.
//
//	analytics.OnHit(app).BindFunc(func(e *analytics.HitEvent) error {
//		if staff.Contains(netip.MustParseAddr(e.Request.RealIP())) {
//			return nil // drop: not e.Next()
//		}
//		e.Hit.Pathname = userIDs.ReplaceAllString(e.Hit.Pathname, "/users/:id")
//		return e.Next()
//	})
//
// Handlers may be bound before or after Register.
func OnHit(app core.App) *hook.Hook[*HitEvent] {
	return app.Store().GetOrSet(onHitKey, func() any { return &hook.Hook[*HitEvent]{} }).(*hook.Hook[*HitEvent])
}

// onHit is the ingest route's call of OnHit: a hit is kept when every
// handler called e.Next().
func onHit(app core.App) func(*core.RequestEvent, *event.Event) (bool, error) {
	h := OnHit(app)
	return func(re *core.RequestEvent, ev *event.Event) (bool, error) {
		if h.Length() == 0 {
			return true, nil
		}
		kept := false
		err := h.Trigger(&HitEvent{App: re.App, Request: re, Hit: ev}, func(*HitEvent) error {
			kept = true
			return nil
		})
		return kept && err == nil, err
	}
}
