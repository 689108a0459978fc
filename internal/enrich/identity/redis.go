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

	// Defer has Defer leave the lookups of the hits that would wait for
	// Redis and may start a session to the Redis queue's write (see
	// Deferred). Set it only when every event is queued through a queue
	// that settles them (redisq in its batch format) and its caller calls
	// Finish; without it Defer is Touch.
	Defer bool

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

// maxBehindBatch caps the writes behind in one script call: they are not
// waited for, and a long script holds up every other command on Redis (the
// queue's XADDs among them).
const maxBehindBatch = 32

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
// Every session Redis returns is copied into an in-memory store. A hit
// whose answer other instances cannot change, one that continues a session
// live in that store and is not a pageview that could be the session's
// entry, is answered from it at once (counted by Local): a visit's later
// hits, its pings and leaves, never wait for Redis. What they did to the
// session is written to Redis behind them, within behindDelay and in a few
// script calls, for the other instances, once it moved on more than
// 1/behindSlack of the timeout past what Redis holds (most hits of a visit
// come sooner, and need no write); should Redis hold another live
// session for the visitor by then (it lost this one, say), memory takes
// that one. Only the hits that may start a session or be its entry wait
// for Redis, which makes them unique across instances.
//
// With RedisOptions.Defer, the hits that would wait for Redis and may start
// a session do not make a round trip of their own: Defer hands them to the
// Redis queue's write, which looks their sessions up in the script call
// that appends them to the stream (see Deferred). The rest of what follows
// holds for the hits that do wait here.
//
// Concurrent hits that wait share round trips (a group commit). At most
// maxInFlight round trips run at once; a hit that finds one free sends
// itself at once, in the caller's goroutine, and hits that come while all
// are busy wait and go together in the next free one: one script call
// that resolves them in arrival order, one after the other, as if they
// had come one by one. The script touches the keys of every hit of its
// batch, so it needs a single Redis node, not a cluster (all keys are
// declared, but they hash to different slots).
//
// It must not hold up ingestion: each hit waits at most RedisOptions.Timeout.
// The in-memory store resolves the hits that Redis does not answer in time
// (counted in pocketlytics_session_fallbacks_total), so they are still
// accepted and a visit this instance has seen goes on. After failThreshold
// failures in a row Redis counts as down (logged once): hits go straight
// to memory and one per RetryInterval tries Redis, until one gets an answer.
//
// During an outage, each instance knows only the visits it saw, so a visit
// whose hits reach several instances may be split, and a ping whose session
// this instance never saw is dropped as no session. Sessions started in
// memory are written to Redis once it answers, unless another instance
// wrote one for the visitor first.
type RedisSessions struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	retry   int64 // ns
	memory  *Memory
	logger  func() *slog.Logger
	// deferring: see RedisOptions.Defer.
	deferring bool

	mu       sync.Mutex
	pending  []*touchRequest // in arrival order
	behind   []*touchRequest // write-behind requests, sent after pending
	inFlight int             // round trips under way, at most maxInFlight
	closed   bool
	calls    sync.WaitGroup // round trips under way, for Close
	requests sync.Pool      // of *touchRequest

	failures     atomic.Int32 // in a row
	failingSince atomic.Int64 // unix ns when Redis was deemed down; 0 while up
	nextProbe    atomic.Int64 // unix ns after which one hit may try Redis again
	fallbacks    atomic.Uint64
	local        atomic.Uint64 // hits that continued a session live in memory
	batches      atomic.Uint64 // script calls sent

	dirtyMu    sync.Mutex
	dirty      map[sessionKey]dirtySession // sessions to write behind
	behindWake chan struct{}               // cap 1: dirty has entries
	behindStop chan struct{}
	behindDone chan struct{}
	stopOnce   sync.Once
	flushMu    sync.Mutex // one flushBehind at a time
}

// sessionKey names a session's hash: its site and the visitor id it runs
// under.
type sessionKey struct {
	site    string
	visitor uint64
}

// dirtySession is what hits answered from memory did to a session, not yet
// written to Redis.
type dirtySession struct {
	s       Session
	last    time.Time
	timeout time.Duration
	entered bool
}

// lookup is one hit's part of a touchScript call.
type lookup struct {
	hit Hit
	// The session to write if Redis has none live (see touchScript).
	known        Session
	knownEntered bool
	isKnown      bool
	which        int
}

// touchRequest is one hit on its way to Redis.
type touchRequest struct {
	lookup
	deadline time.Time
	// behind marks a write-behind request (see flushBehind).
	behind bool

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

// errBadSession is the script's error for one hit, such as a key of another
// type: trying again would fail again.
var errBadSession = errors.New("identity: session script")

// errDown is Flush's error while Redis counts as down.
var errDown = errors.New("identity: Redis sessions unavailable")

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

	r := &RedisSessions{
		client:     redis.NewClient(&o),
		prefix:     prefix + "sess:",
		timeout:    opts.Timeout,
		retry:      opts.RetryInterval.Nanoseconds(),
		memory:     opts.Memory,
		logger:     opts.Logger,
		deferring:  opts.Defer,
		dirty:      make(map[sessionKey]dirtySession),
		behindWake: make(chan struct{}, 1),
		behindStop: make(chan struct{}),
		behindDone: make(chan struct{}),
	}
	go r.writeBehindLoop()
	return r
}

// Close writes what hits answered from memory did to their sessions, waits
// for the round trips under way (which end within Timeout) and closes the
// store's connection pool. Hits still waiting for a round trip, and later
// ones, are resolved in memory.
func (r *RedisSessions) Close() error {
	r.stopOnce.Do(func() { close(r.behindStop) })
	<-r.behindDone

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

// Fallbacks reports how many hits were resolved in memory because Redis
// did not answer in time (hits of a session live in memory are not
// counted: see Local).
func (r *RedisSessions) Fallbacks() uint64 {
	return r.fallbacks.Load()
}

// Local reports how many hits continued a session live in this instance's
// memory without waiting for Redis (see RedisSessions).
func (r *RedisSessions) Local() uint64 {
	return r.local.Load()
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
var touchScript = redis.NewScript(touchLua + `
local out, k = {}, 1
for a = 1, #ARGV, 10 do
  local res, nkeys = resolve(k, a)
  out[#out + 1] = res
  k = k + nkeys
end
return out
`)

// touchLua defines resolve(k, a), which resolves one hit from its keys
// starting at KEYS[k] and its touchArgs arguments starting at ARGV[a] (see
// touchScript) and returns the reply and the number of keys the hit has;
// entryScript uses it too.
const touchLua = `
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

local function resolve(k, a)
  local yesterday = nil
  if ARGV[a] == '2' then yesterday = KEYS[k + 1] end
  local ok, res = pcall(touch, KEYS[k], yesterday, a)
  if not ok then
    if type(res) == 'table' then res = res.err end
    res = {tostring(res)}
  end
  return res, tonumber(ARGV[a])
end
`

// touchArgs is the number of ARGV of one hit in touchScript.
const touchArgs = 10

// Touch implements Sessions. It sends h to Redis, alone or with the hits
// that came meanwhile, and waits for the answer at most Timeout.
func (r *RedisSessions) Touch(h Hit) (Session, bool) {
	if s, ok := r.continueLocal(h); ok {
		return s, true
	}
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

// continueLocal answers h from memory when its answer cannot depend on
// other instances, writing it behind when Redis's copy of the session lags
// (see Memory.continueLive).
func (r *RedisSessions) continueLocal(h Hit) (Session, bool) {
	s, entered, behind, ok := r.memory.continueLive(h)
	if !ok {
		return Session{}, false
	}
	r.local.Add(1)
	if behind {
		r.writeBehind(s, h, entered)
	}
	return s, true
}

// isClosed reports whether Close was called.
func (r *RedisSessions) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// newRequest returns a request for h from the pool.
func (r *RedisSessions) newRequest(h Hit) *touchRequest {
	req, _ := r.requests.Get().(*touchRequest)
	if req == nil {
		req = &touchRequest{done: make(chan touchResult, 1), timer: time.NewTimer(time.Hour)}
		req.timer.Stop()
	}
	req.hit = h
	req.deadline = time.Now().Add(r.timeout)
	return req
}

// request prepares h for the script.
func (r *RedisSessions) request(h Hit) *touchRequest {
	req := r.newRequest(h)
	req.lookup = r.prepare(h)
	return req
}

// prepare returns h's part of a script call.
func (r *RedisSessions) prepare(h Hit) lookup {
	// The session to write if Redis has none live: the one this instance
	// knows (started in memory while Redis was down, or lost by Redis),
	// else a new one under today's id.
	lk := lookup{hit: h}
	if h.Previous != 0 {
		lk.known, lk.knownEntered, lk.isKnown = r.memory.peek(h.Previous, h.Time)
	}
	if !lk.isKnown {
		lk.known, lk.knownEntered, lk.isKnown = r.memory.peek(h.Visitor, h.Time)
	}
	if !lk.isKnown {
		start := time.UnixMilli(h.Time.UnixMilli()) // as Memory and Redis keep it
		lk.known = Session{ID: SessionID(h.Visitor, start), Visitor: h.Visitor, Start: start}
	}
	lk.which = 1
	if h.Previous != 0 && lk.known.Visitor == h.Previous {
		lk.which = 2
	}
	return lk
}

// appendArgs appends lk's keys and touchArgs arguments.
func (r *RedisSessions) appendArgs(keys []string, args []any, lk *lookup) ([]string, []any) {
	h := lk.hit
	keys = append(keys, r.key(h.Site, h.Visitor))
	nkeys := 1
	if h.Previous != 0 {
		keys = append(keys, r.key(h.Site, h.Previous))
		nkeys = 2
	}
	return keys, append(args,
		nkeys, h.Time.UnixMilli(), h.Timeout.Milliseconds(), flag(h.Pageview), flag(h.Create),
		lk.known.ID, lk.known.Start.UnixMilli(), flag(lk.knownEntered), lk.which, flag(lk.isKnown),
	)
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

// take removes up to maxBatch waiting requests: hits first, oldest first,
// then up to maxBehindBatch writes behind. Another round trip may have
// taken them all.
func (r *RedisSessions) take() []*touchRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := make([]*touchRequest, 0, min(len(r.pending)+len(r.behind), maxBatch))
	batch = takeFrom(&r.pending, batch, maxBatch)
	return takeFrom(&r.behind, batch, min(maxBatch-len(batch), maxBehindBatch))
}

// takeFrom moves up to n requests from the front of *queue to batch.
func takeFrom(queue *[]*touchRequest, batch []*touchRequest, n int) []*touchRequest {
	q := *queue
	n = min(len(q), n)
	batch = append(batch, q[:n]...)
	rest := copy(q, q[n:])
	clear(q[rest:]) // no stale pointers in the spare capacity
	*queue = q[:rest]
	return batch
}

// release gives the caller's round trip slot back, unless hits are waiting:
// then it reports false, and the caller keeps the slot to send them.
func (r *RedisSessions) release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) > 0 || len(r.behind) > 0 {
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
		keys, args = r.appendArgs(keys, args, &req.lookup)
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
		// The hit whose session this is counted already; a write behind
		// retried is not Redis failing again.
		s, ok, err := r.answer(res[i], req.hit, !req.behind)
		req.done <- touchResult{s: s, ok: ok, err: err}
	}
}

// answer reads touchScript's reply for h and records the session in
// memory. countFailure: an unreadable reply counts as Redis failing.
func (r *RedisSessions) answer(reply any, h Hit, countFailure bool) (Session, bool, error) {
	s, entered, ok, err := parseSession(reply, h)
	if err != nil {
		if countFailure {
			r.failed(err)
		}
		return Session{}, false, err
	}
	r.answered()
	if ok {
		r.memory.put(s, entered, h.Time, h.Timeout)
	}
	return s, ok, nil
}

// parseSession reads touchScript's reply for h.
func parseSession(reply any, h Hit) (s Session, entered, ok bool, err error) {
	res, _ := reply.([]any)
	switch len(res) {
	case 0:
		return Session{}, false, false, nil
	case 1:
		return Session{}, false, false, fmt.Errorf("%w: %v", errBadSession, res[0])
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
	s, entered, ok := r.memory.touchEntered(h)
	if ok {
		// Written behind as soon as Redis answers, for the other instances.
		r.writeBehind(s, h, entered)
	}
	return s, ok
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

// behindDelay is how long the sessions that hits continued in memory wait
// before they are written to Redis, gathering the hits of many visits (and
// several of one) into few script calls. Other instances see those hits
// that much later, which only matters to a session about to time out.
const behindDelay = 250 * time.Millisecond

// maxDirty bounds the sessions waiting to be written behind, during an
// outage say. A session left out is written by a later hit of its visit.
const maxDirty = 1 << 16

// writeBehind notes that h continued s in memory (entered: s has seen a
// pageview), to be written to Redis within behindDelay.
func (r *RedisSessions) writeBehind(s Session, h Hit, entered bool) {
	k := sessionKey{site: h.Site, visitor: s.Visitor}
	r.dirtyMu.Lock()
	d, ok := r.dirty[k]
	switch {
	case !ok:
		if len(r.dirty) >= maxDirty {
			r.dirtyMu.Unlock()
			return
		}
		d = dirtySession{s: s, last: h.Time, timeout: h.Timeout, entered: entered}
	case d.s.ID != s.ID:
		// Memory moved on to another session (one Redis gave): keep the
		// later.
		if h.Time.Before(d.last) {
			break
		}
		d = dirtySession{s: s, last: h.Time, timeout: h.Timeout, entered: entered}
	default:
		if h.Time.After(d.last) {
			d.last = h.Time
		}
		d.timeout = max(d.timeout, h.Timeout)
		d.entered = d.entered || entered
	}
	r.dirty[k] = d
	first := len(r.dirty) == 1
	r.dirtyMu.Unlock()
	if first {
		select {
		case r.behindWake <- struct{}{}:
		default:
		}
	}
}

// writeBehindLoop writes the dirty sessions behindDelay after the first
// one, and once more when the store is closed.
func (r *RedisSessions) writeBehindLoop() {
	defer close(r.behindDone)
	delay := time.NewTimer(behindDelay)
	delay.Stop()
	for {
		select {
		case <-r.behindWake:
		case <-r.behindStop:
			r.flushBehind()
			return
		}
		delay.Reset(behindDelay)
		select {
		case <-delay.C:
		case <-r.behindStop:
			delay.Stop()
			r.flushBehind()
			return
		}
		r.flushBehind()
	}
}

// Flush writes to Redis now what hits answered from memory did to their
// sessions, which otherwise waits up to behindDelay, and reports an error
// when some could not be written (they are tried again later). Close
// flushes too.
func (r *RedisSessions) Flush() error {
	return r.flushBehind()
}

// flushBehind writes the dirty sessions to Redis and waits for the answers,
// which memory takes like any other: a session Redis had lost is written
// back (see touchScript), and one another instance started meanwhile
// replaces this instance's. Sessions that could not be written stay dirty
// and are tried again after behindDelay; while Redis is down, only as often
// as RetryInterval allows. One flush runs at a time.
func (r *RedisSessions) flushBehind() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()

	r.dirtyMu.Lock()
	if len(r.dirty) == 0 {
		r.dirtyMu.Unlock()
		return nil
	}
	if !r.shouldTry() {
		r.dirtyMu.Unlock()
		r.retryBehind()
		return errDown
	}
	dirty := r.dirty
	r.dirty = make(map[sessionKey]dirtySession, len(dirty))
	r.dirtyMu.Unlock()

	reqs := make([]*touchRequest, 0, len(dirty))
	for k, d := range dirty {
		// Redis extends the session it holds for the visitor id, or, when
		// it holds none live, writes this one.
		req := r.newRequest(Hit{Site: k.site, Visitor: k.visitor, Time: d.last, Timeout: d.timeout, Pageview: d.entered})
		req.known, req.knownEntered, req.isKnown, req.which = d.s, d.entered, true, 1
		req.behind = true
		// No hit waits for it: it may take until the next flush is due
		// (the calls of a large flush go one after the other).
		req.deadline = time.Now().Add(max(r.timeout, behindDelay))
		reqs = append(reqs, req)
	}
	r.mu.Lock()
	r.behind = append(r.behind, reqs...)
	lead := r.inFlight < maxInFlight
	if lead {
		r.inFlight++
		r.calls.Add(1)
	}
	r.mu.Unlock()
	if lead {
		r.drain()
	}

	var err error
	for _, req := range reqs {
		res := <-req.done
		if res.err != nil && !errors.Is(res.err, errBadSession) {
			err = res.err
			d := dirty[sessionKey{site: req.hit.Site, visitor: req.hit.Visitor}]
			r.writeBehind(d.s, Hit{Site: req.hit.Site, Time: d.last, Timeout: d.timeout}, d.entered)
		}
		req.behind = false
		r.requests.Put(req)
	}
	if err != nil {
		r.retryBehind()
	}
	return err
}

// retryBehind makes the loop try the dirty sessions again after behindDelay.
func (r *RedisSessions) retryBehind() {
	select {
	case r.behindWake <- struct{}{}:
	default:
	}
}
