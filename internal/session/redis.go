package session

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/metrics"
)

// RedisOptions configure NewRedis. Zero values mean the defaults.
type RedisOptions struct {
	// Timeout bounds how long a hit waits for Redis (default 50ms); a hit
	// that waits longer is resolved in memory.
	Timeout time.Duration
	// Memory holds the sessions this instance has seen, which resolve its
	// hits while Redis is slow or down (default NewMemory(0)).
	Memory *Memory
	// Logger returns the logger of the line written when Redis starts
	// failing and of the one when it answers again (default
	// slog.Default). It is called when logging, so app.Logger fits.
	Logger func() *slog.Logger
}

// failThreshold is how many failed hits in a row make Redis count as down;
// a lone slow answer only sends its own hit to memory.
const failThreshold = 3

// retryInterval is how often, while Redis counts as down, one hit tries
// it; the others go straight to memory rather than each waiting Timeout.
const retryInterval = 250 * time.Millisecond

// Redis is a Store shared by every instance on one Redis, so a visit keeps
// one session whichever instance each of its hits reaches. It keeps a hash
// per live session,
//
//	<prefix>sess:<site>:<visitor>  id, start, last (unix ms), entered (0|1)
//
// expiring Timeout after the session's last hit, and resolves each hit in
// one script call, atomic against the same visit's hits on other instances.
//
// Every answer is copied into a Memory, which resolves the hits that Redis
// does not answer within RedisOptions.Timeout (counted in
// pocketlytics_session_fallbacks_total): they are still accepted, and a
// visit this instance has seen goes on. A session that memory holds and
// Redis does not (started during an outage, or lost by a restart without
// persistence) is written to Redis by the visit's next hit, unless another
// instance wrote one for the visitor meanwhile.
type Redis struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	memory  *Memory
	logger  func() *slog.Logger

	failures     atomic.Int32 // in a row
	failingSince atomic.Int64 // unix ns when Redis was deemed down; 0 while up
	nextProbe    atomic.Int64 // unix ns after which one hit may try again
	fallbacks    atomic.Uint64
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on rdb's server whose keys start with prefix
// (empty: "pl:").
//
// It opens its own connection pool with rdb's options, except that the
// hit's deadline is enforced on the socket and a failed call is not
// retried: a hit that waited Timeout is better resolved in memory. Close
// releases the pool.
func NewRedis(rdb *redis.Client, prefix string, opts RedisOptions) *Redis {
	if prefix == "" {
		prefix = "pl:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.Memory == nil {
		opts.Memory = NewMemory(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default
	}
	o := *rdb.Options()
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.PoolTimeout = opts.Timeout
	o.PushNotificationProcessor = nil // rdb's own, bound to rdb; the new client makes its own
	return &Redis{
		client:  redis.NewClient(&o),
		prefix:  prefix + "sess:",
		timeout: opts.Timeout,
		memory:  opts.Memory,
		logger:  opts.Logger,
	}
}

// Close releases the store's connection pool.
func (r *Redis) Close() error { return r.client.Close() }

// Fallbacks reports how many hits were resolved in memory because Redis
// did not answer in time.
func (r *Redis) Fallbacks() uint64 { return r.fallbacks.Load() }

// touchScript resolves one hit. KEYS: today's key, then yesterday's when
// the hit has one. ARGV: now (unix ms), timeout (ms), pageview (0|1),
// create (0|1), then the session to write when no key holds a live one:
// id, start, entered (0|1), which key (1|2), known (1: live in this
// instance's memory, so written even when create is 0).
// Returns {id, start, entry (0|1), key (1|2), entered (0|1)}, or {} when no
// session is live and none may be written.
//
// Ids stay strings: Lua numbers are doubles and would round 63-bit ids.
// "last" only moves forward, so a hit that arrives late from a slower
// instance cannot shorten the session.
var touchScript = redis.NewScript(`
local nowArg = ARGV[1]
local now, timeout = tonumber(nowArg), tonumber(ARGV[2])
local pageview = ARGV[3] == '1'

local function extend(key)
  local v = redis.call('HMGET', key, 'id', 'start', 'last', 'entered')
  if not (v[1] and v[3]) then return nil end
  local last = tonumber(v[3])
  if now >= last + timeout then return nil end
  if now > last then
    redis.call('HSET', key, 'last', nowArg)
    last = now
  end
  local entry, entered = 0, 0
  if v[4] == '1' then entered = 1 end
  if pageview and entered == 0 then
    redis.call('HSET', key, 'entered', '1')
    entry, entered = 1, 1
  end
  redis.call('PEXPIRE', key, last + timeout - now)
  return {v[1], v[2], entry, 0, entered}
end

if KEYS[2] then
  local s = extend(KEYS[2])
  if s then s[4] = 2 return s end
end
local s = extend(KEYS[1])
if s then s[4] = 1 return s end

if ARGV[4] ~= '1' and ARGV[9] ~= '1' then return {} end
local which = tonumber(ARGV[8])
local entered, entry = ARGV[7], 0
if pageview and entered ~= '1' then entered, entry = '1', 1 end
redis.call('HSET', KEYS[which], 'id', ARGV[5], 'start', ARGV[6], 'last', nowArg, 'entered', entered)
redis.call('PEXPIRE', KEYS[which], timeout)
return {ARGV[5], ARGV[6], entry, which, tonumber(entered)}
`)

// Touch implements Store: one script call, bounded by the store's Timeout
// and ctx, else memory.
func (r *Redis) Touch(ctx context.Context, l Lookup) (Session, bool) {
	if !r.shouldTry() {
		return r.fallback(l)
	}

	// The session to write if Redis has none live: the one this instance
	// knows, else a new one under today's id.
	known, knownEntered, isKnown := Session{}, false, false
	if l.Previous != 0 {
		known, knownEntered, isKnown = r.memory.peek(l.Previous, l.Time)
	}
	if !isKnown {
		known, knownEntered, isKnown = r.memory.peek(l.Visitor, l.Time)
	}
	if !isKnown {
		start := time.UnixMilli(l.Time.UnixMilli()) // as memory and Redis keep it
		known = Session{ID: ID(l.Visitor, start), Visitor: l.Visitor, Start: start}
	}
	which := 1
	keys := []string{r.key(l.Site, l.Visitor)}
	if l.Previous != 0 {
		keys = append(keys, r.key(l.Site, l.Previous))
		if known.Visitor == l.Previous {
			which = 2
		}
	}

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	res, err := touchScript.Run(ctx, r.client, keys,
		l.Time.UnixMilli(), Timeout.Milliseconds(), flag(l.Pageview), flag(l.Create),
		known.ID, known.Start.UnixMilli(), flag(knownEntered), which, flag(isKnown),
	).Slice()
	cancel()
	var s Session
	var entered, ok bool
	if err == nil {
		s, entered, ok, err = parseReply(res, l)
	}
	if err != nil {
		r.failed(err)
		return r.fallback(l)
	}
	r.answered()
	if ok {
		r.memory.put(s, entered, l.Time)
	}
	return s, ok
}

// parseReply reads touchScript's reply for l.
func parseReply(res []any, l Lookup) (s Session, entered, ok bool, err error) {
	if len(res) == 0 {
		return Session{}, false, false, nil
	}
	if len(res) != 5 {
		return Session{}, false, false, fmt.Errorf("session: script returned %d values", len(res))
	}
	idStr, _ := res[0].(string)
	startStr, _ := res[1].(string)
	entry, _ := res[2].(int64)
	which, _ := res[3].(int64)
	seen, _ := res[4].(int64)
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		return Session{}, false, false, fmt.Errorf("session: stored id %q: %w", idStr, err)
	}
	start, err := strconv.ParseInt(startStr, 10, 64)
	if err != nil {
		return Session{}, false, false, fmt.Errorf("session: stored start %q: %w", startStr, err)
	}
	s = Session{ID: id, Visitor: l.Visitor, Start: time.UnixMilli(start), Entry: entry == 1}
	if which == 2 {
		s.Visitor = l.Previous
	}
	return s, seen == 1, true, nil
}

func (r *Redis) key(site string, visitor uint64) string {
	return r.prefix + site + ":" + strconv.FormatUint(visitor, 10)
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *Redis) fallback(l Lookup) (Session, bool) {
	r.fallbacks.Add(1)
	metrics.SessionFallbacks.Inc()
	s, _, ok := r.memory.touch(l)
	return s, ok
}

// shouldTry reports whether this hit goes to Redis: always while it is up;
// while it is down, one hit per retryInterval.
func (r *Redis) shouldTry() bool {
	if r.failingSince.Load() == 0 {
		return true
	}
	now := time.Now().UnixNano()
	next := r.nextProbe.Load()
	return now >= next && r.nextProbe.CompareAndSwap(next, now+retryInterval.Nanoseconds())
}

// failed notes a failed hit; failThreshold of them in a row mark Redis
// down, which is logged once.
func (r *Redis) failed(err error) {
	if r.failures.Add(1) < failThreshold {
		return
	}
	now := time.Now().UnixNano()
	r.nextProbe.Store(now + retryInterval.Nanoseconds())
	if r.failingSince.CompareAndSwap(0, now) {
		r.logger().Warn("session: Redis unavailable, resolving sessions in memory until it answers",
			slog.String("error", err.Error()), slog.String("timeout", r.timeout.String()))
	}
}

// answered notes a hit Redis resolved; it ends an outage.
func (r *Redis) answered() {
	if r.failures.Load() != 0 {
		r.failures.Store(0)
	}
	if since := r.failingSince.Load(); since != 0 && r.failingSince.CompareAndSwap(since, 0) {
		r.logger().Info("session: Redis available again",
			slog.String("outage", time.Duration(time.Now().UnixNano()-since).Round(time.Millisecond).String()),
			slog.Uint64("fallbacks", r.fallbacks.Load()))
	}
}
