package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/metrics"
)

// RedisOptions configure NewRedisSessions. Zero values mean the defaults.
type RedisOptions struct {
	// Timeout bounds the Redis round trip of one hit (default 50ms). A hit
	// that takes longer is resolved in memory instead.
	Timeout time.Duration

	// RetryInterval is how often, while Redis is failing, one hit tries it
	// again; the others go straight to memory (default 250ms).
	RetryInterval time.Duration

	// Memory holds this instance's copy of the sessions it has seen, which
	// resolves hits while Redis is failing (default NewMemory).
	Memory *Memory

	// Logger returns the logger of the one line written when Redis starts
	// failing and the one when it answers again (default slog.Default).
	// It is called when logging, so app.Logger fits: PocketBase sets up
	// its logger only at bootstrap.
	Logger func() *slog.Logger
}

// failThreshold is how many failures in a row make Redis count as down. A
// lone slow answer only sends its own hit to memory.
const failThreshold = 3

// RedisSessions is a Sessions shared by every instance on one Redis, so a
// visit keeps one session whichever instance each of its hits reaches. It
// keeps one hash per live session,
//
//	<prefix>sess:<site>:<visitor>  id, start, last (unix ms), entered (0|1)
//
// expiring Timeout after its last hit, and resolves each hit with one Lua
// script: one round trip, atomic against hits of the same visit on other
// instances.
//
// It must not hold up ingestion: each hit waits at most RedisOptions.Timeout.
// Every session Redis returns is copied into an in-memory store, which
// resolves the hits that Redis does not answer in time (counted in
// pocketlytics_session_fallbacks_total), so they are still accepted and a
// visit this instance has seen goes on. After failThreshold failures in a
// row Redis counts as down (logged once): hits go straight to memory and
// one per RetryInterval tries Redis, until one gets an answer.
//
// During an outage, each instance knows only the visits it saw, so a visit
// whose hits reach several instances may be split, and a ping whose session
// this instance never saw is dropped as no session. Sessions started in
// memory are written to Redis by their next hit once it answers, unless
// another instance wrote one for the visitor first.
type RedisSessions struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	retry   int64 // ns
	memory  *Memory
	logger  func() *slog.Logger

	failures     atomic.Int32 // in a row
	failingSince atomic.Int64 // unix ns when Redis was deemed down; 0 while up
	nextProbe    atomic.Int64 // unix ns after which one hit may try Redis again
	fallbacks    atomic.Uint64
}

var _ Sessions = (*RedisSessions)(nil)

// NewRedisSessions returns a session store on rdb's server whose keys start
// with prefix (the deployment's REDIS_PREFIX; empty means "pl:").
//
// It opens its own connection pool with rdb's options, except that a hit's
// deadline is enforced on the socket and failed calls are not retried: the
// shared client waits out its read timeout (seconds) and retries, and its
// pool may be busy with blocking stream reads. Close releases the pool.
func NewRedisSessions(rdb *redis.Client, prefix string, opts RedisOptions) *RedisSessions {
	if prefix == "" {
		prefix = "pl:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 250 * time.Millisecond
	}
	if opts.Memory == nil {
		opts.Memory = NewMemory(MemoryOptions{})
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default
	}

	o := *rdb.Options()
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.PoolTimeout = opts.Timeout
	o.PushNotificationProcessor = nil // rdb's own, bound to rdb; the new client makes its own

	return &RedisSessions{
		client:  redis.NewClient(&o),
		prefix:  prefix + "sess:",
		timeout: opts.Timeout,
		retry:   opts.RetryInterval.Nanoseconds(),
		memory:  opts.Memory,
		logger:  opts.Logger,
	}
}

// Close closes the store's connection pool.
func (r *RedisSessions) Close() error {
	return r.client.Close()
}

// Fallbacks reports how many hits were resolved in memory.
func (r *RedisSessions) Fallbacks() uint64 {
	return r.fallbacks.Load()
}

// touchScript resolves one hit.
//
// KEYS[1]: today's key; KEYS[2], when given: yesterday's key.
// ARGV: now (unix ms), timeout (ms), pageview (0|1), create (0|1), then
// the session to write when neither key holds a live one: id, start,
// entered (0|1), key (1|2), known (1: live in this instance's memory, so
// written even when create is 0).
// Returns {id, start, entry (0|1), key (1|2), entered (0|1)}, or nil when
// no session is live and none may be written.
//
// Ids stay strings: Lua numbers are doubles and would round 63-bit ids.
// "last" only moves forward, so a hit that arrives late from a slower
// instance cannot shorten the session.
var touchScript = redis.NewScript(`
local now, timeout = tonumber(ARGV[1]), tonumber(ARGV[2])
local pageview = ARGV[3] == '1'

local function extend(key)
  local v = redis.call('HMGET', key, 'id', 'start', 'last', 'entered')
  if not (v[1] and v[3]) then return nil end
  local last = tonumber(v[3])
  if now >= last + timeout then return nil end
  if now > last then
    redis.call('HSET', key, 'last', ARGV[1])
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

if ARGV[4] ~= '1' and ARGV[9] ~= '1' then return nil end
local which = tonumber(ARGV[8])
local entered, entry = ARGV[7], 0
if pageview and entered ~= '1' then entered, entry = '1', 1 end
redis.call('HSET', KEYS[which], 'id', ARGV[5], 'start', ARGV[6], 'last', ARGV[1], 'entered', entered)
redis.call('PEXPIRE', KEYS[which], timeout)
return {ARGV[5], ARGV[6], entry, which, tonumber(entered)}
`)

// Touch implements Sessions.
func (r *RedisSessions) Touch(h Hit) (Session, bool) {
	if !r.shouldTry() {
		return r.fallback(h)
	}
	s, entered, ok, err := r.touch(h)
	if err != nil {
		r.failed(err)
		return r.fallback(h)
	}
	r.answered()
	if ok {
		r.memory.put(s, entered, h.Time, h.Timeout)
	}
	return s, ok
}

func (r *RedisSessions) touch(h Hit) (s Session, entered, ok bool, err error) {
	// The session to write if Redis has none live: the one this instance
	// knows (started in memory while Redis was down, or lost by Redis),
	// else a new one under today's id.
	known, knownEntered, isKnown := Session{}, false, false
	if h.Previous != 0 {
		known, knownEntered, isKnown = r.memory.peek(h.Previous, h.Time)
	}
	if !isKnown {
		known, knownEntered, isKnown = r.memory.peek(h.Visitor, h.Time)
	}
	if !isKnown {
		start := time.UnixMilli(h.Time.UnixMilli()) // as Memory and Redis keep it
		known = Session{ID: SessionID(h.Visitor, start), Visitor: h.Visitor, Start: start}
	}
	which := 1
	keys := make([]string, 1, 2)
	keys[0] = r.key(h.Site, h.Visitor)
	if h.Previous != 0 {
		keys = append(keys, r.key(h.Site, h.Previous))
		if known.Visitor == h.Previous {
			which = 2
		}
	}
	args := []any{
		h.Time.UnixMilli(), h.Timeout.Milliseconds(), flag(h.Pageview), flag(h.Create),
		known.ID, known.Start.UnixMilli(), flag(knownEntered), which, flag(isKnown),
	}

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	res, err := touchScript.Run(ctx, r.client, keys, args...).Slice()
	if errors.Is(err, redis.Nil) {
		return Session{}, false, false, nil
	}
	if err != nil {
		return Session{}, false, false, err
	}
	return parseSession(res, h)
}

// parseSession reads touchScript's reply.
func parseSession(res []any, h Hit) (s Session, entered, ok bool, err error) {
	if len(res) != 5 {
		return Session{}, false, false, fmt.Errorf("identity: session script returned %d values", len(res))
	}
	idStr, _ := res[0].(string)
	startStr, _ := res[1].(string)
	entry, _ := res[2].(int64)
	which, _ := res[3].(int64)
	seen, _ := res[4].(int64)
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		return Session{}, false, false, fmt.Errorf("identity: stored session id %q: %w", idStr, err)
	}
	start, err := strconv.ParseInt(startStr, 10, 64)
	if err != nil {
		return Session{}, false, false, fmt.Errorf("identity: stored session start %q: %w", startStr, err)
	}
	s = Session{ID: id, Visitor: h.Visitor, Start: time.UnixMilli(start), Entry: entry == 1}
	if which == 2 {
		s.Visitor = h.Previous
	}
	return s, seen == 1, true, nil
}

func (r *RedisSessions) key(site string, visitor uint64) string {
	return r.prefix + site + ":" + strconv.FormatUint(visitor, 10)
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *RedisSessions) fallback(h Hit) (Session, bool) {
	r.fallbacks.Add(1)
	metrics.SessionFallbacks.Inc()
	return r.memory.Touch(h)
}

// shouldTry reports whether this hit goes to Redis: always while it is up;
// while it is down, one hit per retry interval.
func (r *RedisSessions) shouldTry() bool {
	if r.failingSince.Load() == 0 {
		return true
	}
	now := time.Now().UnixNano()
	next := r.nextProbe.Load()
	return now >= next && r.nextProbe.CompareAndSwap(next, now+r.retry)
}

// failed notes a failed call; failThreshold of them in a row mark Redis
// down, which is logged once.
func (r *RedisSessions) failed(err error) {
	if r.failures.Add(1) < failThreshold {
		return
	}
	now := time.Now().UnixNano()
	r.nextProbe.Store(now + r.retry)
	if r.failingSince.CompareAndSwap(0, now) {
		r.logger().Warn("identity: Redis sessions unavailable, resolving sessions in memory until it answers",
			slog.String("error", err.Error()), slog.String("timeout", r.timeout.String()))
	}
}

// answered notes a successful call; it ends an outage.
func (r *RedisSessions) answered() {
	// Loads first: this runs on every hit, and stores would bounce the
	// cache line between cores.
	if r.failures.Load() != 0 {
		r.failures.Store(0)
	}
	if r.failingSince.Load() == 0 {
		return
	}
	if since := r.failingSince.Swap(0); since != 0 {
		r.logger().Info("identity: Redis sessions available again",
			slog.String("outage", time.Duration(time.Now().UnixNano()-since).Round(time.Millisecond).String()),
			slog.Uint64("fallbacks", r.fallbacks.Load()))
	}
}
