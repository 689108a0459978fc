package session

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/batch"
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

// confirmedSlack is how long after Redis last answered for a session the
// visit's hits that cannot change it (not a possible entry) are answered
// from memory, without a round trip: 1/60 of Timeout. Redis's copy then
// expires at most that much before this instance's, so only a visit that
// comes back to another instance after a gap just short of Timeout is split.
const confirmedSlack = Timeout / 60

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
// a script call, atomic against the same visit's hits on other instances.
// Hits that come while a call is under way share the next (package batch).
//
// A hit that cannot change a session Redis answered for less than
// confirmedSlack ago (a ping, a leave, a pageview after the entry) is
// answered from memory at once.
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

	lookups *batch.Batcher[lookup, answer]
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
	r := &Redis{
		client:  redis.NewClient(&o),
		prefix:  prefix + "sess:",
		timeout: opts.Timeout,
		memory:  opts.Memory,
		logger:  opts.Logger,
	}
	r.lookups = batch.New(r.resolve, maxBatch)
	return r
}

// Close waits for the round trip under way and releases the store's
// connection pool; later hits are resolved in memory.
func (r *Redis) Close() error {
	r.lookups.Close()
	return r.client.Close()
}

// Fallbacks reports how many hits were resolved in memory because Redis
// did not answer in time.
func (r *Redis) Fallbacks() uint64 { return r.fallbacks.Load() }

// maxBatch caps the hits resolved by one script call, which holds up Redis
// while it runs (a few microseconds a hit).
const maxBatch = 256

// touchScript resolves a batch of hits one after the other, in the order
// given, so that hits of one visit in a batch see each other as if they had
// come one by one.
//
// Each hit has one key, today's, or two, today's then yesterday's, and
// touchArgs ARGV: its number of keys (1|2), now (unix ms), timeout (ms),
// pageview (0|1), create (0|1), then the session to write when no key holds
// a live one: id, start, entered (0|1), which key (1|2), known (1: live in
// this instance's memory, so written even when create is 0). It returns one
// reply per hit: {id, start, entry (0|1), key (1|2), entered (0|1)}; {}
// when no session is live and none may be written; {error} when the hit
// failed (a key of another type), which fails only that hit.
//
// Ids stay strings: Lua numbers are doubles and would round 63-bit ids.
// "last" only moves forward, so a hit that arrives late from a slower
// instance cannot shorten the session. The script touches the keys of every
// hit of its batch: it needs a single Redis node, not a cluster.
var touchScript = redis.NewScript(`
local function extend(key, nowArg, now, timeout, pageview)
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

local function touch(keys, a)
  local nowArg = ARGV[a + 1]
  local now, timeout = tonumber(nowArg), tonumber(ARGV[a + 2])
  local pageview = ARGV[a + 3] == '1'
  if keys[2] then
    local s = extend(keys[2], nowArg, now, timeout, pageview)
    if s then s[4] = 2 return s end
  end
  local s = extend(keys[1], nowArg, now, timeout, pageview)
  if s then s[4] = 1 return s end

  if ARGV[a + 4] ~= '1' and ARGV[a + 9] ~= '1' then return {} end
  local which = tonumber(ARGV[a + 8])
  local entered, entry = ARGV[a + 7], 0
  if pageview and entered ~= '1' then entered, entry = '1', 1 end
  redis.call('HSET', keys[which], 'id', ARGV[a + 5], 'start', ARGV[a + 6], 'last', nowArg, 'entered', entered)
  redis.call('PEXPIRE', keys[which], timeout)
  return {ARGV[a + 5], ARGV[a + 6], entry, which, tonumber(entered)}
end

local out, k = {}, 1
for a = 1, #ARGV, ` + strconv.Itoa(touchArgs) + ` do
  local n = tonumber(ARGV[a])
  local keys = {KEYS[k]}
  if n == 2 then keys[2] = KEYS[k + 1] end
  local ok, res = pcall(touch, keys, a)
  if not ok then
    if type(res) == 'table' then res = res.err end
    res = {tostring(res)}
  end
  out[#out + 1] = res
  k = k + n
end
return out
`)

// touchArgs is the number of ARGV of one hit in touchScript.
const touchArgs = 10

// lookup is one hit on its way to Redis, with the session to write there
// if Redis holds none live.
type lookup struct {
	l            Lookup
	known        Session
	knownEntered bool
	isKnown      bool
}

// answer is Redis's answer for one hit.
type answer struct {
	s       Session
	entered bool
	ok      bool
	err     error
}

// Touch implements Store: the hit goes to Redis with the hits that came
// meanwhile, and waits at most the store's Timeout (or until ctx ends),
// else memory answers.
func (r *Redis) Touch(ctx context.Context, l Lookup) (Session, bool) {
	if s, ok := r.memory.recent(l, confirmedSlack); ok {
		return s, true
	}
	if !r.shouldTry() {
		return r.fallback(l)
	}
	lk := lookup{l: l}
	// The session to write if Redis has none live: the one this instance
	// knows, else a new one under today's id.
	if l.Previous != 0 {
		lk.known, lk.knownEntered, lk.isKnown = r.memory.peek(l.Previous, l.Time)
	}
	if !lk.isKnown {
		lk.known, lk.knownEntered, lk.isKnown = r.memory.peek(l.Visitor, l.Time)
	}
	if !lk.isKnown {
		start := time.UnixMilli(l.Time.UnixMilli()) // as memory and Redis keep it
		lk.known = Session{ID: ID(l.Visitor, start), Visitor: l.Visitor, Start: start}
	}

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	a, err := r.lookups.Do(ctx, lk)
	cancel()
	if err != nil || a.err != nil {
		return r.fallback(l)
	}
	return a.s, a.ok
}

// resolve is one round trip: touchScript for a batch of hits. Every
// session Redis answers is copied into memory, also for a hit that stopped
// waiting. A failed round trip counts as one failure, and so does each hit
// the script could not resolve.
func (r *Redis) resolve(lks []lookup) ([]answer, error) {
	keys := make([]string, 0, 2*len(lks))
	args := make([]any, 0, touchArgs*len(lks))
	for _, lk := range lks {
		l, which, nkeys := lk.l, 1, 1
		keys = append(keys, r.key(l.Site, l.Visitor))
		if l.Previous != 0 {
			keys, nkeys = append(keys, r.key(l.Site, l.Previous)), 2
			if lk.known.Visitor == l.Previous {
				which = 2
			}
		}
		args = append(args, nkeys, l.Time.UnixMilli(), Timeout.Milliseconds(), flag(l.Pageview), flag(l.Create),
			lk.known.ID, lk.known.Start.UnixMilli(), flag(lk.knownEntered), which, flag(lk.isKnown))
	}

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	res, err := touchScript.Run(ctx, r.client, keys, args...).Slice()
	cancel()
	if err == nil && len(res) != len(lks) {
		err = fmt.Errorf("session: script returned %d replies for %d hits", len(res), len(lks))
	}
	if err != nil {
		r.failed(err)
		return nil, err
	}
	out := make([]answer, len(lks))
	for i, lk := range lks {
		reply, _ := res[i].([]any)
		a := &out[i]
		if a.s, a.entered, a.ok, a.err = parseReply(reply, lk.l); a.err != nil {
			r.failed(a.err)
			continue
		}
		r.answered()
		if a.ok {
			r.memory.put(a.s, a.entered, lk.l.Time)
		}
	}
	return out, nil
}

// parseReply reads touchScript's reply for l.
func parseReply(res []any, l Lookup) (s Session, entered, ok bool, err error) {
	if len(res) == 0 {
		return Session{}, false, false, nil
	}
	if len(res) == 1 {
		return Session{}, false, false, fmt.Errorf("session: script: %v", res[0])
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
