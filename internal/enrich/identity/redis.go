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
	// that takes longer is resolved by Fallback instead.
	Timeout time.Duration

	// RetryInterval is how often, while Redis is failing, one hit tries it
	// again; the others go straight to Fallback (default 1s).
	RetryInterval time.Duration

	// Fallback resolves hits while Redis is failing (default NewMemory).
	Fallback Sessions

	// Logger returns the logger of the one line written when Redis starts
	// failing and the one when it answers again (default slog.Default).
	// It is called when logging, so app.Logger fits: PocketBase sets up
	// its logger only at bootstrap.
	Logger func() *slog.Logger
}

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
// When Redis is slow or down, hits are resolved by an in-memory fallback
// (counted in pocketlytics_session_fallbacks_total): they are still
// accepted, but a visit whose hits reach several instances during the
// outage may be split, and a ping whose session this instance has not seen
// is dropped as no session. One hit per RetryInterval probes Redis, and
// hits go back to it as soon as it answers.
type RedisSessions struct {
	client   *redis.Client
	prefix   string
	timeout  time.Duration
	retry    int64 // ns
	fallback Sessions
	logger   func() *slog.Logger

	failingSince atomic.Int64 // unix ns of the first failure of an outage; 0 while up
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
		opts.RetryInterval = time.Second
	}
	if opts.Fallback == nil {
		opts.Fallback = NewMemory(MemoryOptions{})
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
		client:   redis.NewClient(&o),
		prefix:   prefix + "sess:",
		timeout:  opts.Timeout,
		retry:    opts.RetryInterval.Nanoseconds(),
		fallback: opts.Fallback,
		logger:   opts.Logger,
	}
}

// Close closes the store's connection pool.
func (r *RedisSessions) Close() error {
	return r.client.Close()
}

// Fallbacks reports how many hits were resolved by the fallback store.
func (r *RedisSessions) Fallbacks() uint64 {
	return r.fallbacks.Load()
}

// touchScript resolves one hit.
//
// KEYS[1]: today's key; KEYS[2], when given: yesterday's key.
// ARGV: now (unix ms), timeout (ms), pageview (0|1), create (0|1), id of a
// session started now.
// Returns {id, start, entry (0|1), 1 = today's key | 2 = yesterday's}, or
// nil when no session is live and create is 0.
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
  local entry = 0
  if now > last then
    redis.call('HSET', key, 'last', ARGV[1])
    last = now
  end
  if pageview and v[4] ~= '1' then
    redis.call('HSET', key, 'entered', '1')
    entry = 1
  end
  redis.call('PEXPIRE', key, last + timeout - now)
  return {v[1], v[2], entry}
end

if KEYS[2] then
  local s = extend(KEYS[2])
  if s then s[4] = 2 return s end
end
local s = extend(KEYS[1])
if s then s[4] = 1 return s end
if ARGV[4] ~= '1' then return nil end
redis.call('HSET', KEYS[1], 'id', ARGV[5], 'start', ARGV[1], 'last', ARGV[1], 'entered', ARGV[3])
redis.call('PEXPIRE', KEYS[1], timeout)
return {ARGV[5], ARGV[1], tonumber(ARGV[3]), 1}
`)

// Touch implements Sessions.
func (r *RedisSessions) Touch(h Hit) (Session, bool) {
	if !r.shouldTry() {
		return r.fallbackTouch(h)
	}
	s, ok, err := r.touch(h)
	if err != nil {
		r.failed(err)
		return r.fallbackTouch(h)
	}
	r.answered()
	return s, ok
}

func (r *RedisSessions) touch(h Hit) (Session, bool, error) {
	now := h.Time.UnixMilli()
	keys := make([]string, 1, 2)
	keys[0] = r.key(h.Site, h.Visitor)
	if h.Previous != 0 {
		keys = append(keys, r.key(h.Site, h.Previous))
	}
	args := []any{now, h.Timeout.Milliseconds(), flag(h.Pageview), flag(h.Create), SessionID(h.Visitor, time.UnixMilli(now))}

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	res, err := touchScript.Run(ctx, r.client, keys, args...).Slice()
	if errors.Is(err, redis.Nil) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, err
	}
	return parseSession(res, h)
}

// parseSession reads touchScript's reply.
func parseSession(res []any, h Hit) (Session, bool, error) {
	if len(res) != 4 {
		return Session{}, false, fmt.Errorf("identity: session script returned %d values", len(res))
	}
	idStr, _ := res[0].(string)
	startStr, _ := res[1].(string)
	entry, _ := res[2].(int64)
	which, _ := res[3].(int64)
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		return Session{}, false, fmt.Errorf("identity: stored session id %q: %w", idStr, err)
	}
	start, err := strconv.ParseInt(startStr, 10, 64)
	if err != nil {
		return Session{}, false, fmt.Errorf("identity: stored session start %q: %w", startStr, err)
	}
	s := Session{ID: id, Visitor: h.Visitor, Start: time.UnixMilli(start), Entry: entry == 1}
	if which == 2 {
		s.Visitor = h.Previous
	}
	return s, true, nil
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

func (r *RedisSessions) fallbackTouch(h Hit) (Session, bool) {
	r.fallbacks.Add(1)
	metrics.SessionFallbacks.Inc()
	return r.fallback.Touch(h)
}

// shouldTry reports whether this hit goes to Redis: always while it is up;
// while it is failing, one hit per retry interval.
func (r *RedisSessions) shouldTry() bool {
	if r.failingSince.Load() == 0 {
		return true
	}
	now := time.Now().UnixNano()
	next := r.nextProbe.Load()
	return now >= next && r.nextProbe.CompareAndSwap(next, now+r.retry)
}

// failed notes a failed call; the first of an outage is logged.
func (r *RedisSessions) failed(err error) {
	now := time.Now().UnixNano()
	r.nextProbe.Store(now + r.retry)
	if r.failingSince.CompareAndSwap(0, now) {
		r.logger().Warn("identity: Redis sessions unavailable, resolving sessions in memory until it answers",
			slog.String("error", err.Error()), slog.Duration("timeout", r.timeout))
	}
}

// answered notes a successful call; it ends an outage.
func (r *RedisSessions) answered() {
	if since := r.failingSince.Swap(0); since != 0 {
		r.logger().Info("identity: Redis sessions available again",
			slog.Duration("outage", time.Duration(time.Now().UnixNano()-since)),
			slog.Uint64("fallbacks", r.fallbacks.Load()))
	}
}
