// Package event defines the enriched analytics event: the one record that
// travels from the ingest route through the queue and the flusher into the
// analytics store, and that the live layer turns into messages.
//
// An Event never holds a raw IP address. Visitor and session ids are keyed
// hashes that change with the daily salt, so they cannot be joined across days.
package event

import "time"

// The values of Event.Type: what the tracker sent.
const (
	Pageview = "pageview" // a page was shown
	Custom   = "event"    // a custom event the site sent, named in Event.Name
	Ping     = "ping"     // the page is still open (engagement)
	Leave    = "leave"    // the page was left
)

// ValidType reports whether t is one of the accepted hit types.
func ValidType(t string) bool {
	switch t {
	case Pageview, Custom, Ping, Leave:
		return true
	}
	return false
}

// Event is one enriched hit.
//
// Queues store it in the binary format of AppendBinary. Dead letters show
// it as JSON, for an operator to read.
type Event struct {
	// ID is unique per hit (16 random bytes, hex). Stores use it to make a
	// redelivered batch idempotent.
	ID string `json:"id"`

	// Time is when the hit was accepted, UTC, millisecond precision.
	Time time.Time `json:"t"`

	SiteID string `json:"site"`
	Type   string `json:"type"`

	// Name and Props are set for custom events (Type == Custom).
	Name  string            `json:"name,omitempty"`
	Props map[string]string `json:"props,omitempty"`

	// Page.
	Hostname string `json:"host,omitempty"`
	Pathname string `json:"path,omitempty"`
	Title    string `json:"title,omitempty"`

	// Source.
	ReferrerHost string `json:"ref,omitempty"`
	Channel      string `json:"ch,omitempty"` // direct, search, social, email, paid, referral
	UTMSource    string `json:"us,omitempty"`
	UTMMedium    string `json:"um,omitempty"`
	UTMCampaign  string `json:"uc,omitempty"`
	UTMTerm      string `json:"ut,omitempty"`
	UTMContent   string `json:"ux,omitempty"`

	// Location (from the GeoIP database or trusted CDN headers).
	Country   string  `json:"cc,omitempty"` // ISO 3166-1 alpha-2, upper case
	Region    string  `json:"rg,omitempty"`
	City      string  `json:"city,omitempty"`
	Latitude  float64 `json:"lat,omitempty"`
	Longitude float64 `json:"lon,omitempty"`

	// Device.
	Device      string `json:"dev,omitempty"` // desktop, mobile, tablet
	Browser     string `json:"br,omitempty"`
	OS          string `json:"os,omitempty"`
	ScreenWidth int    `json:"w,omitempty"`

	// Identity: daily-salted keyed hashes, masked to 63 bits so they fit a
	// signed 64-bit integer column in every store.
	VisitorID uint64 `json:"vid"`
	SessionID uint64 `json:"sid"`

	// Entry marks the first pageview of a session.
	Entry bool `json:"entry,omitempty"`

	// Engagement, on pings and leaves: the milliseconds the page was visible
	// since the previous ping, and the deepest point scrolled to, in percent.
	Engaged int `json:"e,omitempty"`
	Scroll  int `json:"s,omitempty"`

	// Revenue a custom event carries: the amount in millionths of the
	// currency's unit (exact for any decimal amount a shop charges) and the
	// ISO 4217 code, upper case. Both zero when there is none.
	RevenueAmount   int64  `json:"rev,omitempty"`
	RevenueCurrency string `json:"cur,omitempty"`
}
