// Package enrich turns a raw hit into an event.Event. Like Plausible's
// ingestion pipeline, it is an ordered list of named steps, each a small
// function over a shared state; any step can drop the hit with an explicit
// reason that the caller counts:
//
//	bots      drop known bots ("bot") and headless browsers ("headless")
//	page      hostname, pathname and UTM parameters from the page URL
//	source    referrer host and channel (direct, search, social, email, paid, referral)
//	device    device type, browser and OS from the User-Agent
//	geo       country, region, city and coordinates (trusted CDN headers, then GeoIP)
//	identity  daily-salted visitor id, session id and entry flag
//
// Usage:
//
//	p, err := enrich.New(enrich.Config{GeoIPDB: cfg.GeoIPDB, GeoHeaders: cfg.GeoHeaders, Salts: ring})
//	ev, drop := p.Run(ctx, &enrich.Input{Hit: body, Site: site, IP: ip, UserAgent: ua, Header: r.Header, Now: time.Now()})
//	if drop != "" {
//		metrics.HitsDropped.WithLabelValues(drop).Inc()
//	}
//
// The client IP is used for the GeoIP lookup and hashed into the visitor id;
// it is stored nowhere, not even in the session store.
package enrich

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	useragent "github.com/medama-io/go-useragent"

	"github.com/pocketlytics/pocketlytics/internal/enrich/geo"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/session"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// Drop reasons returned by Run, in snake_case for metric labels.
const (
	DropBot         = "bot"          // a crawler, HTTP library or other non-browser client
	DropHeadless    = "headless"     // a headless or automated browser
	DropInvalidType = "invalid_type" // not pageview, event, ping or leave
	DropInvalidURL  = "invalid_url"  // the page URL has no host
	DropNoSalt      = "no_salt"      // the daily salts are not loaded yet
	DropNoSession   = "no_session"   // a ping or leave with no live session to extend
)

// Config configures New. The zero value works: embedded country database,
// no trusted CDN, process-local salts and sessions, 30-minute sessions.
type Config struct {
	// GeoIPDB is the path of a MaxMind-format database (GeoLite2/GeoIP2
	// City or Country, DB-IP City Lite, ip-location-db). Empty: the embedded
	// country database.
	GeoIPDB string

	// Geo is an opened location database, used instead of GeoIPDB
	// (optional; one that is still being downloaded). The pipeline closes it.
	Geo *geo.DB

	// GeoHeaders names the CDNs whose location headers are trusted:
	// "cloudflare", "vercel", "cloudfront". Only list a CDN that every
	// request passes through; anyone can send these headers otherwise.
	GeoHeaders []string

	// Salts provides the daily salts of visitor ids (see salt.Register).
	// Nil: a process-local ring, so ids change when the process restarts.
	Salts *salt.Ring

	// Sessions tracks live sessions. Nil: an in-memory store, which is per
	// instance (see session.Memory). Instances behind a load balancer
	// without sticky sessions share session.NewRedis.
	Sessions session.Store
}

// Input is one hit to enrich. Hit has been validated by the caller.
type Input struct {
	Hit       hit.Body
	Site      sitecache.Site
	IP        netip.Addr
	UserAgent string
	Header    http.Header
	Now       time.Time
}

// Pipeline enriches hits. It is safe for concurrent use.
type Pipeline struct {
	steps   []step
	ua      *useragent.Parser
	agents  agentCache
	geo     *geo.DB
	headers geo.Headers
	salts   *salt.Ring
	visits  session.Store
}

// parser is go-useragent's parser, built once per process (its trie has
// some 83,000 nodes) and shared by every pipeline.
var parser = sync.OnceValue(useragent.NewParser)

// step is one named stage; it returns a drop reason or "".
type step struct {
	name string
	run  func(p *Pipeline, s *state) string
}

// steps is the pipeline, in order. Cheap drops come first.
var steps = []step{
	{"bots", stepBots},
	{"page", stepPage},
	{"source", stepSource},
	{"device", stepDevice},
	{"geo", stepGeo},
	{"identity", stepIdentity},
}

// state is what the steps share while enriching one hit.
type state struct {
	ctx context.Context // bounds the session lookup
	in  *Input
	ev  event.Event

	agent useragent.UserAgent // parsed by bots, read by device
	query string              // raw query of the page URL
	paid  bool                // the URL carries an ad click id
}

// New builds a pipeline. It fails on an unreadable GeoIP database or an
// unknown CDN name.
func New(cfg Config) (*Pipeline, error) {
	headers, err := geo.NewHeaders(cfg.GeoHeaders)
	if err != nil {
		return nil, fmt.Errorf("enrich: %w", err)
	}
	if cfg.Sessions == nil {
		cfg.Sessions = session.NewMemory(0)
	}
	if cfg.Salts == nil {
		cfg.Salts = salt.NewRing(nil)
		// In memory: no I/O, cannot fail.
		if err := cfg.Salts.Rotate(context.Background(), time.Now()); err != nil {
			return nil, fmt.Errorf("enrich: %w", err)
		}
	}
	db := cfg.Geo
	if db == nil {
		if db, err = geo.Open(cfg.GeoIPDB); err != nil {
			return nil, fmt.Errorf("enrich: %w", err)
		}
	}

	p := &Pipeline{
		steps:   steps,
		ua:      parser(),
		geo:     db,
		headers: headers,
		salts:   cfg.Salts,
		visits:  cfg.Sessions,
	}
	return p, nil
}

// Close releases the GeoIP database. Call it after the last Run.
func (p *Pipeline) Close() error {
	return p.geo.Close()
}

// Steps lists the names of the steps in order.
func (p *Pipeline) Steps() []string {
	names := make([]string, len(p.steps))
	for i, s := range p.steps {
		names[i] = s.name
	}
	return names
}

// Run enriches in. It returns the event, or a zero event and the reason the
// hit was dropped (one of the Drop constants). ctx bounds the session
// lookup, which falls back to the instance's memory (see session.Redis).
func (p *Pipeline) Run(ctx context.Context, in *Input) (ev event.Event, drop string) {
	if !event.ValidType(in.Hit.Type) {
		return event.Event{}, DropInvalidType
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}

	s := &state{ctx: ctx, in: in}
	s.ev = event.Event{
		Time:   now.UTC().Truncate(time.Millisecond),
		SiteID: in.Site.ID,
		Type:   in.Hit.Type,
		Title:  in.Hit.Title, // cut at hit.MaxTitle characters by hit.Parse
	}
	if s.ev.SiteID == "" {
		s.ev.SiteID = in.Hit.Site
	}
	if in.Hit.Type == event.Custom {
		s.ev.Name = in.Hit.Name
		s.ev.Props = in.Hit.Props
		s.ev.RevenueAmount, s.ev.RevenueCurrency = in.Hit.RevenueAmount, in.Hit.RevenueCurrency
	}
	if in.Hit.Type == event.Ping || in.Hit.Type == event.Leave {
		s.ev.Engaged, s.ev.Scroll = in.Hit.Engaged, in.Hit.Scroll
	}

	for _, st := range p.steps {
		if reason := st.run(p, s); reason != "" {
			return event.Event{}, reason
		}
	}
	s.ev.ID = newID()
	return s.ev, ""
}

// newID returns 16 random bytes in hex. crypto/rand reads through the
// vDSO getrandom on Linux (about 50 ns), so no buffering is needed.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	var h [32]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

func stepGeo(p *Pipeline, s *state) string {
	loc := geo.Locate(p.geo, p.headers, s.in.Header, s.in.IP)
	s.ev.Country = loc.Country
	s.ev.Region = loc.Region
	s.ev.City = loc.City
	s.ev.Latitude = loc.Latitude
	s.ev.Longitude = loc.Longitude
	return ""
}

// stepIdentity sets the visitor id (see visitorID) and the session. A hit
// whose visitor has no live session under today's id may continue one under
// yesterday's: someone browsing across midnight stays one visitor in one
// session until that session times out.
func stepIdentity(p *Pipeline, s *state) string {
	salts := p.salts.Salts(s.ev.Time)
	if salts == nil {
		return DropNoSalt
	}
	l := session.Lookup{
		Site:     s.ev.SiteID,
		Visitor:  visitorID(salts.Today, s.ev.SiteID, s.in.IP, s.in.UserAgent),
		Time:     s.ev.Time,
		Pageview: s.ev.Type == event.Pageview,
		Create:   s.ev.Type == event.Pageview || s.ev.Type == event.Custom,
	}
	if len(salts.Yesterday) > 0 {
		l.Previous = visitorID(salts.Yesterday, s.ev.SiteID, s.in.IP, s.in.UserAgent)
	}
	v, ok := p.visits.Touch(s.ctx, l)
	if !ok {
		return DropNoSession
	}
	s.ev.VisitorID = v.Visitor
	s.ev.SessionID = v.ID
	s.ev.Entry = v.Entry
	return ""
}
