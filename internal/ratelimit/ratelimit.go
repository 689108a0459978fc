// Package ratelimit limits how fast one client may send hits: a token bucket
// per client IP address, held in a bounded, sharded map.
//
// Keys are keyed hashes of the address (a random seed per process), so the
// limiter never holds a raw IP, not even in memory. IPv6 addresses are
// limited per /64, the block one subscriber usually gets.
//
//	l := ratelimit.New(ratelimit.Options{Rate: 20})
//	if !l.Allow(e.RealIP()) {
//		return e.TooManyRequestsError("", nil)
//	}
package ratelimit

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

const shardCount = 64

// Options configure a Limiter. The zero value of a field means its default.
type Options struct {
	// Rate is the sustained number of events per second per key (default 20).
	Rate float64

	// Burst is how many events a key may send at once (default 2×Rate, at
	// least 1).
	Burst int

	// MaxKeys bounds the number of tracked keys (default 100000). When the
	// map is full, idle keys go first, then arbitrary ones: a flood of
	// distinct addresses costs a few of them a fresh bucket, never memory.
	MaxKeys int
}

// Limiter is a set of token buckets, one per key. It is safe for concurrent
// use.
type Limiter struct {
	seed     maphash.Seed
	limit    rate.Limit
	burst    int
	perShard int
	// sweepEvery is how often a shard drops its idle buckets: the time an
	// empty bucket takes to fill up again.
	sweepEvery time.Duration

	shards [shardCount]shard
}

type shard struct {
	mu        sync.Mutex
	buckets   map[uint64]*rate.Limiter
	nextSweep time.Time
}

// New returns a Limiter.
func New(opts Options) *Limiter {
	if opts.Rate <= 0 {
		opts.Rate = config.RateLimit
	}
	if opts.Burst <= 0 {
		opts.Burst = max(1, int(math.Ceil(2*opts.Rate)))
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 100000
	}

	l := &Limiter{
		seed:       maphash.MakeSeed(),
		limit:      rate.Limit(opts.Rate),
		burst:      opts.Burst,
		perShard:   max(1, (opts.MaxKeys+shardCount-1)/shardCount),
		sweepEvery: max(time.Second, time.Duration(float64(opts.Burst)/opts.Rate*float64(time.Second))),
	}
	for i := range l.shards {
		l.shards[i].buckets = make(map[uint64]*rate.Limiter)
	}
	return l
}

// Allow reports whether the client at ip may send one more event now, and
// takes a token if so. ip is normally a textual IP address; any other string
// is limited as it is.
func (l *Limiter) Allow(ip string) bool {
	return l.allowAt(l.key(ip), time.Now())
}

// Len returns the number of tracked keys.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// key hashes the address with the process' secret seed; IPv6 addresses are
// cut to their /64 first.
func (l *Limiter) key(ip string) uint64 {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return maphash.String(l.seed, ip)
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			addr = p.Addr()
		}
	}
	b := addr.As16()
	return maphash.Bytes(l.seed, b[:])
}

func (l *Limiter) allowAt(key uint64, now time.Time) bool {
	s := &l.shards[key%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()

	if now.After(s.nextSweep) {
		l.sweep(s, now)
	}

	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= l.perShard {
			l.evictOne(s, now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		s.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

// evictOne makes room in a full shard with bounded work: it looks at a few
// buckets (map order is random) and drops an idle one, else the first.
func (l *Limiter) evictOne(s *shard, now time.Time) {
	const look = 8
	var victim uint64
	i := 0
	for k, b := range s.buckets {
		if i == 0 {
			victim = k
		}
		if b.TokensAt(now) >= float64(l.burst) {
			victim = k
			break
		}
		if i++; i == look {
			break
		}
	}
	delete(s.buckets, victim)
}

// sweep drops the buckets that are full again: they behave exactly like a
// new one, so forgetting them loses nothing.
func (l *Limiter) sweep(s *shard, now time.Time) {
	full := float64(l.burst)
	for k, b := range s.buckets {
		if b.TokensAt(now) >= full {
			delete(s.buckets, k)
		}
	}
	s.nextSweep = now.Add(l.sweepEvery)
}
