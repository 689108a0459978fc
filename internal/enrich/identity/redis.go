package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/metrics"
)

// RedisOptions configure NewRedisSessions. Zero values mean the defaults.
type RedisOptions struct {
	// Timeout bounds how long a hit waits for Redis (default 50ms),
	// including any wait for a free round trip. A hit that waits longer is
	// resolved in memory instead.
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

// failThreshold is how many failures in a row make Redis count as down: a
// failed round trip is one failure, and so is each hit the script could not
// resolve. A lone slow answer only sends its own hits to memory.
const failThreshold = 3

// maxBatch caps the hits resolved by one script call, which blocks Redis
// while it runs (a few microseconds per hit).
const maxBatch = 256

// maxInFlight caps the round trips under way at once. Two let a lone hit go
// at once while another round trip is under way; more would only split the
// batches that Redis runs one after the other anyway.
const maxInFlight = 2

// RedisSessions is a Sessions shared by every instance on one Redis, so a
// visit keeps one session whichever instance each of its hits reaches. It
// keeps one hash per live session,
//
//	<prefix>sess:<site>:<visitor>  id, start, last (unix ms), entered (0|1)
//
// expiring Timeout after its last hit, and resolves hits with a Lua script,
// atomic against hits of the same visit on other instances.
//
// Concurrent Touch calls share round trips (a group commit). At most
// maxInFlight round trips run at once; a hit that finds one free sends
// itself at once, in the caller's goroutine, and hits that come while all
// are busy wait and go together in the next free one: one script call
// that resolves them in arrival order, one after the other, as if they
// had come one by one. The script touches the keys of every hit of its
// batch, so it needs a single Redis node, not a cluster (all keys are
// declared, but they hash to different slots).
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

	mu       sync.Mutex
	pending  []*touchRequest // in arrival order
	inFlight int             // round trips under way, at most maxInFlight
	closed   bool
	calls    sync.WaitGroup // round trips under way, for Close
	requests sync.Pool      // of *touchRequest

	failures     atomic.Int32 // in a row
	failingSince atomic.Int64 // unix ns when Redis was deemed down; 0 while up
	nextProbe    atomic.Int64 // unix ns after which one hit may try Redis again
	fallbacks    atomic.Uint64
	batches      atomic.Uint64 // script calls sent
}

// touchRequest is one hit on its way to Redis.
type touchRequest struct {
	hit Hit
	// The session to write if Redis has none live (see touchScript).
	known        Session
	knownEntered bool
	isKnown      bool
	which        int
	deadline     time.Time

	done  chan touchResult // cap 1: a round trip never blocks on a caller
	timer *time.Timer
}

type touchResult struct {
	s   Session
	ok  bool
	err error
}

// errClosed answers the hits still waiting when the store is closed.
var errClosed = errors.New("identity: Redis sessions closed")

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

// Close waits for the round trips under way (which end within Timeout) and
// closes the store's connection pool. Hits still waiting for a round trip,
// and later ones, are resolved in memory.
func (r *RedisSessions) Close() error {
	r.mu.Lock()
	r.closed = true
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, req := range pending {
		req.done <- touchResult{err: errClosed}
	}
	r.calls.Wait()
	return r.client.Close()
}

// Fallbacks reports how many hits were resolved in memory.
func (r *RedisSessions) Fallbacks() uint64 {
	return r.fallbacks.Load()
}

// touchScript resolves a batch of hits, one after the other in the order
// given, so hits of one visitor in a batch see each other as if sequential.
//
// Each hit has one key, today's, or two, today's then yesterday's, and 10
// ARGV: its number of keys (1|2), now (unix ms), timeout (ms), pageview
// (0|1), create (0|1), then the session to write when neither key holds a
// live one: id, start, entered (0|1), key (1|2), known (1: live in this
// instance's memory, so written even when create is 0).
// Returns one reply per hit: {id, start, entry (0|1), key (1|2), entered
// (0|1)}; {} when no session is live and none may be written; {error} when
// the hit failed (a key of another type), which fails only that hit.
//
// Ids stay strings: Lua numbers are doubles and would round 63-bit ids.
// "last" only moves forward, so a hit that arrives late from a slower
// instance cannot shorten the session.
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

local function touch(today, yesterday, a)
  local nowArg = ARGV[a + 1]
  local now, timeout = tonumber(nowArg), tonumber(ARGV[a + 2])
  local pageview = ARGV[a + 3] == '1'
  if yesterday then
    local s = extend(yesterday, nowArg, now, timeout, pageview)
    if s then s[4] = 2 return s end
  end
  local s = extend(today, nowArg, now, timeout, pageview)
  if s then s[4] = 1 return s end

  if ARGV[a + 4] ~= '1' and ARGV[a + 9] ~= '1' then return {} end
  local which, key = 1, today
  if ARGV[a + 8] == '2' then which, key = 2, yesterday end
  local entered, entry = ARGV[a + 7], 0
  if pageview and entered ~= '1' then entered, entry = '1', 1 end
  redis.call('HSET', key, 'id', ARGV[a + 5], 'start', ARGV[a + 6], 'last', nowArg, 'entered', entered)
  redis.call('PEXPIRE', key, timeout)
  return {ARGV[a + 5], ARGV[a + 6], entry, which, tonumber(entered)}
end

local out, k = {}, 1
for a = 0, #ARGV - 1, 10 do
  local yesterday = nil
  if ARGV[a + 1] == '2' then yesterday = KEYS[k + 1] end
  local ok, res = pcall(touch, KEYS[k], yesterday, a + 1)
  if not ok then
    if type(res) == 'table' then res = res.err end
    res = {tostring(res)}
  end
  out[#out + 1] = res
  k = k + tonumber(ARGV[a + 1])
end
return out
`)

// touchArgs is the number of ARGV of one hit in touchScript.
const touchArgs = 10

// Touch implements Sessions. It sends h to Redis, alone or with the hits
// that came meanwhile, and waits for the answer at most Timeout.
func (r *RedisSessions) Touch(h Hit) (Session, bool) {
	if !r.shouldTry() {
		return r.fallback(h)
	}
	req := r.request(h)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.requests.Put(req)
		return r.fallback(h)
	}
	r.pending = append(r.pending, req)
	lead := r.inFlight < maxInFlight
	if lead {
		r.inFlight++
		r.calls.Add(1)
	}
	r.mu.Unlock()

	req.timer.Reset(r.timeout)
	if lead {
		r.lead(req.deadline)
	}
	select {
	case res := <-req.done:
		req.timer.Stop()
		r.requests.Put(req)
		if res.err != nil {
			return r.fallback(h)
		}
		return res.s, res.ok
	case <-req.timer.C:
		// A round trip still holds req: it is not reused.
		return r.fallback(h)
	}
}

// request prepares h for the script.
func (r *RedisSessions) request(h Hit) *touchRequest {
	req, _ := r.requests.Get().(*touchRequest)
	if req == nil {
		req = &touchRequest{done: make(chan touchResult, 1), timer: time.NewTimer(time.Hour)}
		req.timer.Stop()
	}
	req.hit = h
	req.deadline = time.Now().Add(r.timeout)

	// The session to write if Redis has none live: the one this instance
	// knows (started in memory while Redis was down, or lost by Redis),
	// else a new one under today's id.
	req.isKnown = false
	if h.Previous != 0 {
		req.known, req.knownEntered, req.isKnown = r.memory.peek(h.Previous, h.Time)
	}
	if !req.isKnown {
		req.known, req.knownEntered, req.isKnown = r.memory.peek(h.Visitor, h.Time)
	}
	if !req.isKnown {
		start := time.UnixMilli(h.Time.UnixMilli()) // as Memory and Redis keep it
		req.known = Session{ID: SessionID(h.Visitor, start), Visitor: h.Visitor, Start: start}
	}
	req.which = 1
	if h.Previous != 0 && req.known.Visitor == h.Previous {
		req.which = 2
	}
	return req
}

// lead sends the hits waiting (usually just the caller's) in the round
// trip slot the caller took, waiting at most until deadline, the caller's.
// When more hits came meanwhile, a new goroutine takes over the slot to
// send them, so that the caller is not held up.
func (r *RedisSessions) lead(deadline time.Time) {
	r.commit(r.take(), deadline)
	if !r.release() {
		go r.drain()
	}
}

// drain sends the waiting hits, batch after batch, until none is left.
func (r *RedisSessions) drain() {
	for {
		r.commit(r.take(), time.Time{})
		if r.release() {
			return
		}
	}
}

// take removes up to maxBatch waiting hits, oldest first. Another round
// trip may have taken them all.
func (r *RedisSessions) take() []*touchRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	waiting := len(r.pending)
	n := min(waiting, maxBatch)
	batch := make([]*touchRequest, n)
	copy(batch, r.pending)
	r.pending = r.pending[:copy(r.pending, r.pending[n:])]
	clear(r.pending[len(r.pending):waiting]) // no stale pointers in the spare capacity
	return batch
}

// release gives the caller's round trip slot back, unless hits are waiting:
// then it reports false, and the caller keeps the slot to send them.
func (r *RedisSessions) release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) > 0 {
		return false
	}
	r.inFlight--
	r.calls.Done()
	return true
}

// commit resolves batch in one script call and answers each hit. The
// round trip ends when the last hit stops waiting, or at limit if earlier.
func (r *RedisSessions) commit(batch []*touchRequest, limit time.Time) {
	if len(batch) == 0 {
		return
	}
	keys := make([]string, 0, 2*len(batch))
	args := make([]any, 0, touchArgs*len(batch))
	var deadline time.Time
	for _, req := range batch {
		h := req.hit
		keys = append(keys, r.key(h.Site, h.Visitor))
		nkeys := 1
		if h.Previous != 0 {
			keys = append(keys, r.key(h.Site, h.Previous))
			nkeys = 2
		}
		args = append(args,
			nkeys, h.Time.UnixMilli(), h.Timeout.Milliseconds(), flag(h.Pageview), flag(h.Create),
			req.known.ID, req.known.Start.UnixMilli(), flag(req.knownEntered), req.which, flag(req.isKnown),
		)
		if req.deadline.After(deadline) {
			deadline = req.deadline
		}
	}

	// Hits that gave up earlier have gone to memory, but their answer
	// still updates it.
	if !limit.IsZero() && limit.Before(deadline) {
		deadline = limit
	}
	if time.Until(deadline) <= 0 {
		// Every hit has gone to memory already (Redis was slow to answer
		// the round trip before): don't load it with work no one awaits.
		for _, req := range batch {
			req.done <- touchResult{err: context.DeadlineExceeded}
		}
		return
	}
	r.batches.Add(1)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	res, err := touchScript.Run(ctx, r.client, keys, args...).Slice()
	cancel()
	if err == nil && len(res) != len(batch) {
		err = fmt.Errorf("identity: session script returned %d replies for %d hits", len(res), len(batch))
	}
	if err != nil {
		r.failed(err)
		for _, req := range batch {
			req.done <- touchResult{err: err}
		}
		return
	}
	for i, req := range batch {
		s, entered, ok, err := parseSession(res[i], req.hit)
		if err != nil {
			r.failed(err)
		} else {
			r.answered()
			if ok {
				r.memory.put(s, entered, req.hit.Time, req.hit.Timeout)
			}
		}
		req.done <- touchResult{s: s, ok: ok, err: err}
	}
}

// parseSession reads touchScript's reply for h.
func parseSession(reply any, h Hit) (s Session, entered, ok bool, err error) {
	res, _ := reply.([]any)
	switch len(res) {
	case 0:
		return Session{}, false, false, nil
	case 1:
		return Session{}, false, false, fmt.Errorf("identity: session script: %v", res[0])
	case 5:
	default:
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
