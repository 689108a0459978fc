package realtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/realtime/presence"
)

// Message types; docs/LIVE.md shows an example of each.
const (
	TypeArrival  = "arrival"  // a visitor became live (usually a new session)
	TypePageview = "pageview" // a live visitor showed a page (another, or a reload)
	TypeEvent    = "event"    // a live visitor triggered a custom event
	TypeLeave    = "leave"    // a visitor is no longer live
	TypeCount    = "count"    // the live visitor count changed

	// TypeConversion: a live hit reached one of the site's goals. The
	// instance that serves the dashboards matches it against its goals.
	TypeConversion = "conversion"
)

// Reasons of a leave message.
const (
	LeaveClosed  = "closed"  // the last tab was closed (leave hit, grace period over)
	LeaveTimeout = "timeout" // no hit within the window
)

// Message is the JSON data of every live message except count. Fields that
// do not apply to a type are omitted. "type" is always the first key.
type Message struct {
	Type    string    `json:"type"`
	Site    string    `json:"site"`
	Visitor string    `json:"visitor"`
	Time    time.Time `json:"time"`

	// Page is the path: for arrival the page the visitor arrived on, for
	// pageview the new page, for event the page it happened on.
	Page  string `json:"page,omitempty"`
	Title string `json:"title,omitempty"`
	// From is the previous page of a pageview.
	From string `json:"from,omitempty"`

	// Arrival details.
	NewSession bool    `json:"newSession,omitempty"`
	Referrer   string  `json:"referrer,omitempty"` // host only
	Channel    string  `json:"channel,omitempty"`
	Country    string  `json:"country,omitempty"`
	Region     string  `json:"region,omitempty"`
	City       string  `json:"city,omitempty"`
	Lat        float64 `json:"lat,omitempty"`
	Lon        float64 `json:"lon,omitempty"`
	Device     string  `json:"device,omitempty"`
	Browser    string  `json:"browser,omitempty"`
	OS         string  `json:"os,omitempty"`

	// Hit is the kind of hit that made an arrival: pageview, event or ping.
	Hit string `json:"hit,omitempty"`

	// Custom event (and the event of a conversion).
	Name  string            `json:"name,omitempty"`
	Props map[string]string `json:"props,omitempty"`
	// Revenue of a custom event: a decimal amount ("49.90") and its ISO
	// 4217 currency.
	Revenue  string `json:"revenue,omitempty"`
	Currency string `json:"currency,omitempty"`

	// Goal is the name of the goal a conversion reached.
	Goal string `json:"goal,omitempty"`

	// Reason of a leave: LeaveClosed or LeaveTimeout.
	Reason string `json:"reason,omitempty"`
}

// CountMessage is the data of a count message.
type CountMessage struct {
	Type     string    `json:"type"`
	Site     string    `json:"site"`
	Time     time.Time `json:"time"`
	Visitors int       `json:"visitors"`
}

// VisitorKey is the opaque key live messages use for a visitor: the first 8
// bytes of SHA-256 over a fixed label, the site and the visitor id, in hex.
//
// The visitor id is already a daily-salted hash, so the key changes every
// day with it; SHA-256 makes it one-way, so the id (which the analytics
// store holds) cannot be read back from what dashboards see. It needs no
// secret and every instance derives the same key.
func VisitorKey(site string, visitorID uint64) string {
	const label = "pocketlytics/live/visitor/v1\x00"
	buf := make([]byte, 0, len(label)+len(site)+9)
	buf = append(buf, label...)
	buf = append(buf, site...)
	buf = append(buf, 0)
	buf = binary.BigEndian.AppendUint64(buf, visitorID)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8])
}

func arrivalOf(ev *event.Event, visitor string) presence.Arrival {
	return presence.Arrival{
		Visitor:  visitor,
		Time:     ev.Time,
		Entry:    ev.Pathname,
		Referrer: ev.ReferrerHost,
		Country:  ev.Country,
		Region:   ev.Region,
		City:     ev.City,
		Lat:      finite(ev.Latitude),
		Lon:      finite(ev.Longitude),
		Device:   ev.Device,
		Browser:  ev.Browser,
		OS:       ev.OS,
	}
}

func arrivalMessage(ev *event.Event, visitor string) Message {
	return Message{
		Type: TypeArrival, Site: ev.SiteID, Visitor: visitor, Time: ev.Time,
		Page: ev.Pathname, Title: ev.Title, NewSession: ev.Entry,
		Referrer: ev.ReferrerHost, Channel: ev.Channel,
		Country: ev.Country, Region: ev.Region, City: ev.City, Lat: finite(ev.Latitude), Lon: finite(ev.Longitude),
		Device: ev.Device, Browser: ev.Browser, OS: ev.OS, Hit: ev.Type,
	}
}

// pageviewMessage and eventMessage carry the visitor's place and referrer:
// a dashboard that opened after the arrival still shows where a conversion
// came from.
func pageviewMessage(ev *event.Event, visitor, from string) Message {
	return Message{
		Type: TypePageview, Site: ev.SiteID, Visitor: visitor, Time: ev.Time, Page: ev.Pathname, Title: ev.Title, From: from,
		Referrer: ev.ReferrerHost, Country: ev.Country, Region: ev.Region, City: ev.City,
	}
}

func eventMessage(ev *event.Event, visitor string) Message {
	m := Message{
		Type: TypeEvent, Site: ev.SiteID, Visitor: visitor, Time: ev.Time, Page: ev.Pathname, Name: ev.Name, Props: ev.Props,
		Referrer: ev.ReferrerHost, Country: ev.Country, Region: ev.Region, City: ev.City,
	}
	if ev.RevenueCurrency != "" {
		m.Revenue, m.Currency = event.FormatAmount(ev.RevenueAmount), ev.RevenueCurrency
	}
	return m
}

// conversionMessages returns a conversion per goal that the hit of m (an
// arrival on a pageview, a pageview or an event) reached.
func conversionMessages(m *Message, goals []store.Goal) []Message {
	pageview := m.Type == TypePageview || m.Type == TypeArrival && m.Hit == event.Pageview
	if !pageview && m.Type != TypeEvent {
		return nil
	}
	var out []Message
	for _, g := range goals {
		if !g.Reached(pageview, m.Page, m.Name, m.Props) {
			continue
		}
		out = append(out, Message{
			Type: TypeConversion, Site: m.Site, Visitor: m.Visitor, Time: m.Time, Goal: g.Name,
			Page: m.Page, Name: m.Name, Revenue: m.Revenue, Currency: m.Currency,
			Referrer: m.Referrer, Country: m.Country, Region: m.Region, City: m.City,
		})
	}
	return out
}

func leaveMessage(site, visitor, reason string, at time.Time) Message {
	return Message{Type: TypeLeave, Site: site, Visitor: visitor, Time: at, Reason: reason}
}

var (
	arrivalPrefix = []byte(`{"type":"` + TypeArrival + `"`)
	leavePrefix   = []byte(`{"type":"` + TypeLeave + `"`)
)

// changesCount reports whether a message's data can change the live count,
// without decoding it: "type" is always the first key.
func changesCount(data []byte) bool {
	return bytes.HasPrefix(data, arrivalPrefix) || bytes.HasPrefix(data, leavePrefix)
}

// finite replaces a NaN or infinite coordinate (which JSON cannot carry) by 0, "unknown".
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
