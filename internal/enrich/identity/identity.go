// Package identity derives the visitor and session ids of a hit without
// storing anything that identifies a person.
//
// A visitor id is a keyed hash of (daily salt, site id, IP, User-Agent): the
// same browser on the same site gets the same id all day, a different id on
// another site, and an unlinkable one tomorrow once the salt is gone. Only
// the 63-bit hash is kept; the IP address is used for hashing and dropped.
//
// A session is a run of hits of one visitor with no gap longer than the
// timeout (30 minutes). A visit that crosses midnight UTC keeps its visitor
// and session: Resolver also hashes with yesterday's salt and continues a
// session still live under that id.
//
// Sessions live in memory (Memory, per instance) or in Redis
// (RedisSessions, shared by instances behind a load balancer).
package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/netip"
	"sync"
	"time"
)

// idMask keeps ids within 63 bits so they fit a signed 64-bit column.
const idMask = 1<<63 - 1

// Hasher computes visitor ids under one salt (HMAC-SHA256, truncated to 63
// bits). It is safe for concurrent use and allocation-free: keyed HMAC
// states are pooled, so the salt is not re-keyed on every hit.
type Hasher struct {
	pool sync.Pool
}

type hmacState struct {
	mac hash.Hash
	buf []byte // message scratch
	sum []byte // digest scratch
}

// NewHasher returns a Hasher keyed with salt, which it must not outlive in
// spirit: drop the Hasher when the salt rotates out.
func NewHasher(salt []byte) *Hasher {
	key := append([]byte(nil), salt...)
	h := &Hasher{}
	h.pool.New = func() any {
		return &hmacState{mac: hmac.New(sha256.New, key), buf: make([]byte, 0, 256), sum: make([]byte, 0, sha256.Size)}
	}
	return h
}

// Visitor returns the visitor id of ip and userAgent on siteID. IPv4 and
// IPv4-mapped IPv6 forms of an address give the same id.
func (h *Hasher) Visitor(siteID string, ip netip.Addr, userAgent string) uint64 {
	st := h.pool.Get().(*hmacState)
	defer h.pool.Put(st)

	// The site id cannot contain NUL, so the fields cannot run into each other.
	ip16 := ip.As16()
	b := append(st.buf[:0], siteID...)
	b = append(b, 0)
	b = append(b, ip16[:]...)
	b = append(b, userAgent...)

	st.mac.Reset()
	st.mac.Write(b)
	st.sum = st.mac.Sum(st.sum[:0])
	st.buf = b[:0]
	return binary.BigEndian.Uint64(st.sum) & idMask
}

// SessionID derives the id of the session of visitor that started at start.
func SessionID(visitor uint64, start time.Time) uint64 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], visitor)
	binary.BigEndian.PutUint64(b[8:], uint64(start.UnixMilli()))
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint64(sum[:8]) & idMask
}
