package identity

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/salt"
)

// Request is what Resolve needs of a hit. The IP is hashed, never kept.
type Request struct {
	SiteID    string
	IP        netip.Addr
	UserAgent string
	Time      time.Time
	Pageview  bool // may be the session's entry
	Create    bool // may start a session
}

// Identity is the visitor and session of a hit.
type Identity struct {
	Visitor uint64
	Session uint64
	Entry   bool
	// Pending, when set, is the session lookup left to the queue (see
	// Deferred): the ids above are its guess until Finish.
	Pending *Deferred
}

// deferrer is a Sessions that can leave lookups to the queue
// (RedisSessions).
type deferrer interface {
	Defer(h Hit) (Session, bool, *Deferred)
}

// Resolver assigns visitor and session ids. It is safe for concurrent use.
type Resolver struct {
	sessions Sessions
	timeout  time.Duration
	keys     atomic.Pointer[keys]
}

// keys caches the hashers of one salt generation.
type keys struct {
	salts            *salt.Salts
	today, yesterday *Hasher
}

// NewResolver returns a Resolver tracking sessions in sessions, ended after
// timeout without a hit.
func NewResolver(sessions Sessions, timeout time.Duration) *Resolver {
	return &Resolver{sessions: sessions, timeout: timeout}
}

// Resolve returns the identity of req under salts. ok is false when req may
// not start a session (req.Create unset) and its visitor has none live.
//
// A live session under yesterday's visitor id wins: someone browsing across
// midnight stays one visitor in one session until that session times out.
func (r *Resolver) Resolve(salts *salt.Salts, req Request) (Identity, bool) {
	k := r.keys.Load()
	if k == nil || k.salts != salts {
		// Rebuilt once per salt generation; a racing duplicate is harmless.
		k = &keys{salts: salts, today: NewHasher(salts.Today), yesterday: NewHasher(salts.Yesterday)}
		r.keys.Store(k)
	}

	hit := Hit{
		Site:     req.SiteID,
		Visitor:  k.today.Visitor(req.SiteID, req.IP, req.UserAgent),
		Time:     req.Time,
		Timeout:  r.timeout,
		Pageview: req.Pageview,
		Create:   req.Create,
	}
	if len(salts.Yesterday) > 0 {
		hit.Previous = k.yesterday.Visitor(req.SiteID, req.IP, req.UserAgent)
	}
	var s Session
	var ok bool
	var d *Deferred
	if dr, can := r.sessions.(deferrer); can {
		s, ok, d = dr.Defer(hit)
	} else {
		s, ok = r.sessions.Touch(hit)
	}
	if !ok {
		return Identity{}, false
	}
	return Identity{Visitor: s.Visitor, Session: s.ID, Entry: s.Entry, Pending: d}, true
}
