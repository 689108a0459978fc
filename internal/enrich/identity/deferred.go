package identity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// Deferred is the session of a hit whose Redis lookup rides along with the
// write that queues the hit: instead of a round trip of its own before the
// event is queued, the lookup runs in the script call that appends the event
// to the Redis stream (WriteEntry), and the entry records the session Redis
// decided on (EntrySessions), which the flusher sets on the event it reads.
// A hit that waits for Redis then waits for one round trip instead of two.
//
// Until Redis answers, the event carries a guess: the session this instance
// would write when Redis holds none live, a new one in the common case,
// which is also what Redis decides unless another instance or an earlier
// round trip started one for the visitor.
//
// Whoever queued the event calls Finish once Enqueue returned, which sets
// Redis's answer on the caller's copy of the event (for the live layer).
// When the queue did not bring one (Redis failed or was slow and the event
// went to the local spool with its guess), memory resolves the hit as for
// a hit Redis did not answer in time, and the event keeps its guess, which
// is what was queued.
type Deferred struct {
	r     *RedisSessions
	lk    lookup
	guess Session

	mu       sync.Mutex
	answered bool // Redis's answer is in s
	finished bool // Finish ran: a later answer only updates memory
	s        Session
}

var _ event.Pending = (*Deferred)(nil)

// Defer is Touch for a hit whose event is queued through the Redis queue
// (RedisOptions.Defer): when h would wait for Redis and may start a
// session, it returns at once the session to queue the event with and a
// Deferred that the queue's write settles. Any other hit is resolved as
// Touch resolves it, and d is nil.
func (r *RedisSessions) Defer(h Hit) (s Session, ok bool, d *Deferred) {
	if !r.deferring || !h.Create {
		s, ok := r.Touch(h)
		return s, ok, nil
	}
	if s, ok := r.continueLocal(h); ok {
		return s, true, nil
	}
	if !r.shouldTry() || r.isClosed() {
		s, ok := r.fallback(h)
		return s, ok, nil
	}
	d = &Deferred{r: r, lk: r.prepare(h)}
	d.guess = d.lk.known
	d.guess.Entry = h.Pageview && !d.lk.knownEntered
	return d.guess, true, d
}

// Session returns the session the event is queued with until Redis answers.
func (d *Deferred) Session() Session { return d.guess }

// Finish implements event.Pending: it sets the session of the hit on ev,
// Redis's answer when the queue's write brought one, else the guess the
// event was queued with (and memory resolves the hit, counted as a
// fallback). Call it once Enqueue returned, successfully or not.
func (d *Deferred) Finish(ev *event.Event) {
	d.mu.Lock()
	d.finished = true
	answered, s := d.answered, d.s
	d.mu.Unlock()
	if !answered {
		s = d.guess
		d.r.fallback(d.lk.hit)
	}
	ev.VisitorID, ev.SessionID, ev.Entry = s.Visitor, s.ID, s.Entry
	ev.Pending = nil
}

// complete takes the script's reply for the hit. An answer that comes after
// Finish only updates memory: the hit went on with its guess.
func (d *Deferred) complete(reply any) {
	s, ok, err := d.r.answer(reply, d.lk.hit, true)
	if err != nil || !ok {
		return // Finish falls back to memory
	}
	d.mu.Lock()
	if !d.finished {
		d.answered, d.s = true, s
	}
	d.mu.Unlock()
}

// SessionsField is the entry field in which WriteEntry records the
// sessions of the deferred hits.
const SessionsField = "s"

// DeferredAt is a deferred hit and the index of its event in an entry.
type DeferredAt struct {
	Index int
	Hit   *Deferred
}

// WriteEntry appends an entry of field and value to stream (XADD with an
// id of "*") and, in the same script call, looks up the sessions of the
// deferred hits in the order given, as touchScript does. The entry records
// them in SessionsField; the hits get Redis's answers for Finish. It
// returns the id of the entry.
//
// The script declares every key it touches, but the sessions' keys hash to
// other slots than the stream: like RedisSessions it needs a single Redis
// node, not a cluster.
func WriteEntry(ctx context.Context, c redis.Scripter, stream, field string, value any, hits []DeferredAt) (string, error) {
	keys := make([]string, 1, 1+2*len(hits))
	keys[0] = stream
	args := make([]any, 2, 2+entryArgs*len(hits))
	args[0], args[1] = field, value
	for _, h := range hits {
		d := h.Hit
		args = append(args, h.Index, d.lk.hit.Visitor, d.lk.hit.Previous)
		keys, args = d.r.appendArgs(keys, args, &d.lk)
	}

	res, err := entryScript.Run(ctx, c, keys, args...).Slice()
	var out []any
	if err == nil {
		out, err = entryReply(res, len(hits))
	}
	if err != nil {
		var last *RedisSessions
		for _, h := range hits { // one failure per store, as a failed round trip counts
			if h.Hit.r != last {
				last = h.Hit.r
				last.failed(err)
			}
		}
		return "", err
	}
	for i, h := range hits {
		h.Hit.complete(out[i])
	}
	id, _ := res[0].(string)
	return id, nil
}

// entryArgs is the number of ARGV of one hit in entryScript.
const entryArgs = 3 + touchArgs

// entryReply checks entryScript's reply and returns the hits' replies.
func entryReply(res []any, hits int) ([]any, error) {
	if len(res) != 2 {
		return nil, fmt.Errorf("identity: entry script returned %d values", len(res))
	}
	if id, ok := res[0].(string); !ok || id == "" {
		return nil, errors.New("identity: entry script returned no entry id")
	}
	out, _ := res[1].([]any)
	if len(out) != hits {
		return nil, fmt.Errorf("identity: entry script returned %d replies for %d hits", len(out), hits)
	}
	return out, nil
}

// entryScript appends an entry and resolves the sessions of its deferred
// hits (see WriteEntry).
//
// KEYS[1] is the stream, then each hit's keys as in touchScript. ARGV[1]
// and ARGV[2] are the entry's field and value, then per hit: the index of
// its event in the entry, today's visitor id, yesterday's (0: none), and
// its touchScript arguments. Returns {entry id, {one reply per hit as
// touchScript's}}. A hit that failed (a key of another type) keeps its
// guess: it is left out of the entry's sessions.
//
// Each session is recorded as "index:visitor:session:entry": the visitor id
// is the one the session runs under, yesterday's when it continued
// yesterday's session.
var entryScript = redis.NewScript(touchLua + `
local out, sessions, k = {}, {}, 2
for a = 3, #ARGV, ` + strconv.Itoa(entryArgs) + ` do
  local res, nkeys = resolve(k, a + 3)
  if #res == 5 then
    local visitor = ARGV[a + 1]
    if res[4] == 2 then visitor = ARGV[a + 2] end
    sessions[#sessions + 1] = ARGV[a] .. ':' .. visitor .. ':' .. res[1] .. ':' .. res[3]
  end
  out[#out + 1] = res
  k = k + nkeys
end
local id
if #sessions > 0 then
  id = redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2], '` + SessionsField + `', table.concat(sessions, ';'))
else
  id = redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2])
end
return {id, out}
`)

// RecordedSession is a session recorded in an entry's SessionsField: the
// index of its event in the entry, and the visitor id, session id and entry
// flag Redis decided on.
type RecordedSession struct {
	Index            int
	Visitor, Session uint64
	Entry            bool
}

// EntrySessions appends to dst the sessions recorded in v, an entry's
// SessionsField, in the order recorded. It reports false, appending
// nothing, when v is malformed or an index is not below n, the number of
// events in the entry.
func EntrySessions(dst []RecordedSession, v string, n int) ([]RecordedSession, bool) {
	start := len(dst)
	for part := range strings.SplitSeq(v, ";") {
		idx, rest, ok1 := strings.Cut(part, ":")
		vis, rest, ok2 := strings.Cut(rest, ":")
		sess, entry, ok3 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !ok3 || (entry != "0" && entry != "1") {
			return dst[:start], false
		}
		i, err1 := strconv.Atoi(idx)
		visitor, err2 := strconv.ParseUint(vis, 10, 64)
		session, err3 := strconv.ParseUint(sess, 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || i < 0 || i >= n || visitor > idMask || session > idMask {
			return dst[:start], false
		}
		dst = append(dst, RecordedSession{Index: i, Visitor: visitor, Session: session, Entry: entry == "1"})
	}
	return dst, true
}
