// Package session tracks visits: which session a hit belongs to, and
// whether it is the session's entry. A session is a run of hits of one
// visitor with no gap of Timeout or more.
//
// A store keeps one small record per live session under the visitor id:
// Memory, per instance, or Redis, shared by instances behind a load
// balancer (and backed by a Memory while Redis is slow or down).
//
//	s, ok := store.Touch(ctx, session.Lookup{Site: site, Visitor: id, Time: now, Pageview: true, Create: true})
//
// Visitor ids are keyed hashes that change with the daily salt (package
// enrich derives them); a store never sees an IP address.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Timeout ends a session after this much inactivity, as Plausible and
// Google Analytics do.
const Timeout = 30 * time.Minute

// idMask keeps ids within 63 bits so they fit a signed 64-bit column.
const idMask = 1<<63 - 1

// Lookup is what a store needs of a hit to find its session.
type Lookup struct {
	// Site is the hit's site. Visitor ids already differ per site; a
	// shared store names its keys by site too.
	Site string
	// Visitor is the visitor id under today's salt.
	Visitor uint64
	// Previous is the visitor id under yesterday's salt (0: none). A
	// session still live under it is extended in preference to today's,
	// so a visit across midnight stays one session.
	Previous uint64
	Time     time.Time
	// Pageview marks a pageview: the first one of a session is its entry.
	Pageview bool
	// Create lets the hit start a session when none is live. Engagement
	// hits (pings, leaves) don't, so a late ping cannot open an empty visit.
	Create bool
}

// Session is the session a hit belongs to.
type Session struct {
	ID uint64
	// Visitor is the visitor id the session runs under: Lookup.Previous
	// when it continued yesterday's session, Lookup.Visitor otherwise.
	Visitor uint64
	Start   time.Time
	// Entry is true for the session's first pageview.
	Entry bool
}

// Store tracks live sessions. Implementations are safe for concurrent use.
type Store interface {
	// Touch extends the visitor's live session to cover l (the one under
	// l.Previous first, then l.Visitor), or, when none is live and
	// l.Create is set, starts one under l.Visitor at l.Time. ok is false
	// when no session is live and l.Create is not set.
	Touch(ctx context.Context, l Lookup) (s Session, ok bool)
}

// ID derives the id of the session of visitor that started at start.
func ID(visitor uint64, start time.Time) uint64 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], visitor)
	binary.BigEndian.PutUint64(b[8:], uint64(start.UnixMilli()))
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint64(sum[:8]) & idMask
}
