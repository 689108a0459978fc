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
// With Redis sessions that defer (identity.RedisOptions.Defer), a hit's
// session may be left to the queue's write: the event then carries a guess
// and its lookup in ev.Pending, and the caller calls ev.Pending.Finish once
// the event is queued.
//
// Usage:
//
//	p, err := enrich.New(enrich.Config{GeoIPDB: cfg.GeoIPDB, GeoHeaders: cfg.GeoHeaders, Salts: ring})
//	ev, drop := p.Run(&enrich.Input{Hit: h, Site: site, IP: ip, UserAgent: ua, Header: r.Header, Now: time.Now()})
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
	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/enrich/uatrie"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/salt"
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
	// instance (see identity.Memory). Instances behind a load balancer
	// without sticky sessions share identity.NewRedisSessions.
	Sessions identity.Sessions

	// SessionTimeout ends a session after this much inactivity (default 30m).
	SessionTimeout time.Duration
}

// Input is one hit to enrich. Hit has been validated by the caller.
type Input struct {
	Hit       hit.Payload
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
	ids     *identity.Resolver
	states  sync.Pool
}

// parser returns go-useragent's parser, built once per process and shared,
// with its trie frozen outside the heap (package uatrie) the first time:
// the collector then does not trace its 83,000 nodes in every cycle. Where
// freezing is refused the trie stays on the heap, and parses the same.
var parser = sync.OnceValue(func() *useragent.Parser {
	p := useragent.NewParser()
	if t, err := uatrie.Freeze(p.Trie); err == nil {
		p.Trie = t // the library's own copy becomes garbage
	}
	return p
})

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

// state is what the steps share while enriching one hit. States are
// pooled: a step must not keep references to it.
type state struct {
	in *Input
	ev event.Event

	agent useragent.UserAgent // parsed by bots, read by device
	query string              // raw query of the page URL
	paid  bool                // the URL carries an ad click id
	buf   [maxUAScan]byte
}

// New builds a pipeline. It fails on an unreadable GeoIP database or an
// unknown CDN name.
func New(cfg Config) (*Pipeline, error) {
	headers, err := geo.NewHeaders(cfg.GeoHeaders)
	if err != nil {
		return nil, fmt.Errorf("enrich: %w", err)
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 30 * time.Minute
	}
	if cfg.Sessions == nil {
		cfg.Sessions = identity.NewMemory(identity.MemoryOptions{})
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
		ids:     identity.NewResolver(cfg.Sessions, cfg.SessionTimeout),
	}
	p.states.New = func() any { return new(state) }
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
// hit was dropped (one of the Drop constants).
func (p *Pipeline) Run(in *Input) (ev event.Event, drop string) {
	if !event.ValidType(in.Hit.Type) {
		return event.Event{}, DropInvalidType
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}

	s := p.states.Get().(*state)
	defer func() {
		s.in, s.ev = nil, event.Event{} // a pooled state keeps nothing of the hit
		p.states.Put(s)
	}()
	*s = state{in: in}
	s.ev = event.Event{
		Time:   now.UTC().Truncate(time.Millisecond),
		SiteID: in.Site.ID,
		Type:   in.Hit.Type,
		Title:  truncate(in.Hit.Title, maxTitle),
	}
	if s.ev.SiteID == "" {
		s.ev.SiteID = in.Hit.Site
	}
	if in.Hit.Type == event.TypeEvent {
		s.ev.Name = in.Hit.Name
		s.ev.Props = in.Hit.Props
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

func stepIdentity(p *Pipeline, s *state) string {
	salts := p.salts.Salts(s.ev.Time)
	if salts == nil {
		return DropNoSalt
	}
	typ := s.ev.Type
	id, ok := p.ids.Resolve(salts, identity.Request{
		SiteID:    s.ev.SiteID,
		IP:        s.in.IP,
		UserAgent: s.in.UserAgent,
		Time:      s.ev.Time,
		Pageview:  typ == event.TypePageview,
		Create:    typ == event.TypePageview || typ == event.TypeEvent,
	})
	if !ok {
		return DropNoSession
	}
	s.ev.VisitorID = id.Visitor
	s.ev.SessionID = id.Session
	s.ev.Entry = id.Entry
	if id.Pending != nil { // not a typed nil in the interface
		s.ev.Pending = id.Pending
	}
	return ""
}
