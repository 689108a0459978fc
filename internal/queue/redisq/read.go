package redisq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
)

// maxErrorLen caps the error text stored with a dead letter.
const maxErrorLen = 1024

// ackChunk is the most ids per XACK command. Redis runs a command to its
// end before any other, so a batch's acknowledgement goes in several short
// commands, one round trip each, between which the ingest's XADDs run:
// 5,000 ids in one pipeline held Redis for 2–10 ms at 5,000 hits/s.
const ackChunk = 200

// deadLetterScript moves pending entries to the dead-letter stream: for each
// id still pending in the group it acknowledges the entry and appends it to
// the dead-letter stream with "error" and "source_id". One script, so an
// entry is never both acknowledged and missing from the dead-letter stream,
// and a second call for the same id adds nothing.
//
// An entry comes with its decoded events as JSON, each with its source id,
// so that an operator reading the dead-letter stream sees text, one event a
// dead letter. An entry without them (it did not decode) is copied as it is.
//
// KEYS[1] stream, KEYS[2] dead stream; ARGV[1] group, ARGV[2] error, then
// per entry: id, k, and k pairs of source id and JSON.
var deadLetterScript = redis.NewScript(`
local moved, i = 0, 3
while i <= #ARGV do
  local id, k = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    if k > 0 then
      for j = 0, k - 1 do
        redis.call('XADD', KEYS[2], '*', '` + fieldEvent + `', ARGV[i + 3 + 2 * j], 'error', ARGV[2], 'source_id', ARGV[i + 2 + 2 * j])
      end
    else
      local fields = {}
      local e = redis.call('XRANGE', KEYS[1], id, id)
      if #e > 0 then fields = e[1][2] end
      table.insert(fields, 'error')
      table.insert(fields, ARGV[2])
      table.insert(fields, 'source_id')
      table.insert(fields, id)
      redis.call('XADD', KEYS[2], '*', unpack(fields))
    end
    moved = moved + 1
  end
  i = i + 2 + 2 * k
end
return moved
`)

// deadPartScript sets one event of a batch entry aside: it appends the
// event (as JSON, or its raw encoding when it did not decode) with "error"
// and "source_id" (entry id/index) to the dead-letter stream. The entry
// itself stays pending until the rest of its events are stored and Ack
// acknowledges it. A marker key makes a second call for the same event,
// after the entry was delivered again, add nothing.
//
// KEYS[1] dead stream, KEYS[2] marker; ARGV[1] error, ARGV[2] source id,
// ARGV[3] event, ARGV[4] marker lifetime in ms.
var deadPartScript = redis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[4]) then return 0 end
redis.call('XADD', KEYS[1], '*', '` + fieldEvent + `', ARGV[3], 'error', ARGV[1], 'source_id', ARGV[2])
return 1
`)

// deadPartMarkerTTL is how long a dead-lettered event of a batch entry is
// remembered: far longer than the entry can stay pending.
const deadPartMarkerTTL = 7 * 24 * time.Hour

// Read returns up to about max messages, in whole entries: the events of a
// batch entry are handed out together (and must be acknowledged together),
// so the last entry may take it past max, by less than one entry's events.
// Entries read beyond that are kept for the next Read.
//
// The entries still pending under this consumer's name, left by an earlier
// process of the same name that stopped without acknowledging them, come
// before anything else, until all are handed out. Then entries left idle by
// a stopped consumer for longer than ClaimIdle come (claimed with XAUTOCLAIM, at most every ClaimIdle/4 once the
// backlog of such entries is cleared), then new entries, waiting up to wait
// for the first one when nothing else is at hand. Undecodable entries and
// entries delivered more than MaxDeliveries times are moved to the
// dead-letter stream instead of being returned.
func (q *Queue) Read(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	return q.ReadAppend(ctx, nil, max, wait)
}

var _ queue.AppendReader = (*Queue)(nil)

// ReadAppend is Read onto dst: it appends the messages to dst and returns
// the extended slice.
func (q *Queue) ReadAppend(ctx context.Context, dst []queue.Message, max int, wait time.Duration) ([]queue.Message, error) {
	if max <= 0 {
		return dst, nil
	}
	q.readMu.Lock()
	defer q.readMu.Unlock()

	base := len(dst)
	msgs := q.takeHeld(dst, max)
	if len(q.held) > 0 {
		return msgs, nil
	}
	if !q.ownDone && len(msgs)-base < max {
		// Nothing else until they are done: an entry read new or claimed
		// now would join the pending list being paged through, and be
		// handed out twice.
		own, err := q.readOwn(ctx, max-(len(msgs)-base))
		if err != nil {
			return msgs, nilIfAny(msgs[base:], err)
		}
		if !q.ownDone {
			return q.cut(append(msgs, own...), base, max), nil
		}
	}
	if len(msgs)-base < max {
		claimed, err := q.claim(ctx, max-(len(msgs)-base))
		if err != nil {
			return msgs, nilIfAny(msgs[base:], err)
		}
		msgs = q.cut(append(msgs, claimed...), base, max)
	}

	block := time.Duration(-1) // go-redis: negative omits BLOCK; 0 would block forever
	if len(msgs) == base && wait > 0 {
		block = wait
		if block < time.Millisecond {
			block = time.Millisecond
		}
	}
	// A backlog is read readChunk entries per XREADGROUP: holding the
	// reply of a whole batch while decoding it would take about as much
	// memory again as the batch.
	for len(msgs)-base < max && len(q.held) == 0 {
		count := q.entriesFor(max - (len(msgs) - base))
		var entries int
		var err error
		msgs, entries, err = q.readNew(ctx, count, block, msgs, base+max)
		if err != nil {
			return msgs, nilIfAny(msgs[base:], err) // claimed or read ones are ours now: hand them out
		}
		msgs = q.cut(msgs, base, max)
		if entries < count {
			break // the stream has no more for now
		}
		block = -1
	}
	return msgs, nil
}

// nilIfAny drops err when msgs holds messages: those are this consumer's
// now, and handing them out beats leaving them pending until reclaimed.
func nilIfAny(msgs []queue.Message, err error) error {
	if len(msgs) > 0 {
		return nil
	}
	return err
}

// entriesFor is how many entries to read for about n events, judging by
// the last read.
func (q *Queue) entriesFor(n int) int {
	per := max(q.perEntry, 1)
	return max(1, min(int(float64(n)/per), readChunk))
}

// cut keeps the whole entries of msgs[base:] (consecutive messages of an
// entry) until max messages or more, and holds the rest for the next Read
// (q.held is empty when it is called). The entry that crosses max stays
// whole, so that a consumer filling batches of max sees a full one.
func (q *Queue) cut(msgs []queue.Message, base, max int) []queue.Message {
	if len(msgs)-base <= max {
		return msgs
	}
	end := base + max
	for end < len(msgs) && entryID(msgs[end].ID) == entryID(msgs[end-1].ID) {
		end++
	}
	q.held = slices.Clone(msgs[end:])
	clear(msgs[end:]) // the spare capacity keeps no held events alive
	return msgs[:end]
}

// takeHeld appends to dst the messages held from the last Read, whole
// entries up to max messages or more as cut keeps them, and holds the rest.
// Taking a part of the held messages where they are spares copying all of
// them on every Read while a large over-read is handed out.
func (q *Queue) takeHeld(dst []queue.Message, max int) []queue.Message {
	held := q.held
	n := min(len(held), max)
	for n > 0 && n < len(held) && entryID(held[n].ID) == entryID(held[n-1].ID) {
		n++
	}
	dst = append(dst, held[:n]...)
	clear(held[:n]) // the held array keeps no handed-out events alive
	q.held = held[n:]
	if len(q.held) == 0 {
		q.held = nil
	}
	return dst
}

// partSep separates a batch entry's id from the index of one of its events
// in a message id: "1700000000000-0/3".
const partSep = "/"

// entryID returns the stream entry id of a message id.
func entryID(id string) string {
	e, _, _ := strings.Cut(id, partSep)
	return e
}

// readChunk is the most entries per XREADGROUP.
const readChunk = 1000

// readNew reads up to count new entries, waiting up to block for the first
// (not at all when block is negative), and decodes them onto dst, making
// room for a whole batch of batch events at once when the stream has a
// backlog. It also returns how many entries it read.
func (q *Queue) readNew(ctx context.Context, count int, block time.Duration, dst []queue.Message, batch int) ([]queue.Message, int, error) {
	args := &redis.XReadGroupArgs{
		Group:    q.opts.Group,
		Consumer: q.opts.Consumer,
		Streams:  []string{q.opts.Stream, ">"},
		Count:    int64(count),
		Block:    block,
	}
	streams, err := q.rdb.XReadGroup(ctx, args).Result()
	if err != nil && isNoGroup(err) {
		// The stream or group was deleted under us (FLUSHALL, an operator):
		// recreate them and read again.
		if err = q.ensureGroup(ctx); err == nil {
			streams, err = q.rdb.XReadGroup(ctx, args).Result()
		}
	}
	if errors.Is(err, redis.Nil) {
		return dst, 0, nil
	}
	if err != nil {
		return dst, 0, fmt.Errorf("redisq: xreadgroup: %w", err)
	}

	var fresh []redis.XMessage
	for _, s := range streams {
		fresh = append(fresh, s.Messages...)
	}
	per := max(q.perEntry, 1)
	room := len(dst) + int(float64(len(fresh))*per) + 1
	if len(fresh) == count { // a backlog: room for the whole batch
		room = max(room, batch+2*int(per)+1)
	}
	if cap(dst) < room {
		dst = append(make([]queue.Message, 0, room), dst...)
	}
	n := len(dst)
	dst, err = q.decode(ctx, fresh, nil, dst)
	if len(fresh) > 0 && err == nil {
		q.perEntry = float64(len(dst)-n) / float64(len(fresh))
	}
	return dst, len(fresh), err
}

func isNoGroup(err error) bool {
	return strings.HasPrefix(err.Error(), "NOGROUP")
}

// readOwn reads the next page of the entries pending under this consumer's
// name (XREADGROUP from an id rather than ">"), and marks them all read when
// none is left.
func (q *Queue) readOwn(ctx context.Context, max int) ([]queue.Message, error) {
	entries, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    q.opts.Group,
		Consumer: q.opts.Consumer,
		Streams:  []string{q.opts.Stream, q.ownCursor},
		Count:    int64(q.entriesFor(max)),
		Block:    -1,
	}).Result()
	if err != nil && isNoGroup(err) {
		q.ownDone = true // a new group: nothing is pending
		return nil, q.ensureGroup(ctx)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisq: xreadgroup own pending: %w", err)
	}
	var own []redis.XMessage
	for _, s := range entries {
		own = append(own, s.Messages...)
	}
	if len(own) == 0 {
		q.ownDone = true
		return nil, nil
	}
	q.ownCursor = own[len(own)-1].ID
	counts, err := q.deliveries(ctx, own)
	if err != nil {
		return nil, err
	}
	return q.decode(ctx, own, counts, nil)
}

// claim takes over entries idle for longer than ClaimIdle, when a claim
// round is due.
func (q *Queue) claim(ctx context.Context, max int) ([]queue.Message, error) {
	now := time.Now()
	if now.Before(q.nextClaim) {
		return nil, nil
	}

	claimed, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   q.opts.Stream,
		Group:    q.opts.Group,
		Consumer: q.opts.Consumer,
		MinIdle:  q.opts.ClaimIdle,
		Start:    q.claimCursor,
		Count:    int64(q.entriesFor(max)),
	}).Result()
	if err != nil {
		if isNoGroup(err) {
			return nil, q.ensureGroup(ctx)
		}
		return nil, fmt.Errorf("redisq: xautoclaim: %w", err)
	}

	// A cursor of 0-0 means the whole pending list was scanned: wait a
	// while before scanning again. Otherwise continue on the next Read.
	q.claimCursor = next
	if next == "0-0" || next == "" {
		q.claimCursor = "0-0"
		q.nextClaim = now.Add(q.opts.ClaimIdle / 4)
	}
	if len(claimed) == 0 {
		return nil, nil
	}

	counts, err := q.deliveries(ctx, claimed)
	if err != nil {
		return nil, err
	}
	return q.decode(ctx, claimed, counts, nil)
}

// deliveries looks up how often each entry was handed out (XPENDING's
// times-delivered), one pipelined round trip for all of them.
func (q *Queue) deliveries(ctx context.Context, msgs []redis.XMessage) ([]int, error) {
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: q.opts.Stream, Group: q.opts.Group,
			Start: m.ID, End: m.ID, Count: 1,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redisq: xpending: %w", err)
	}
	counts := make([]int, len(msgs))
	for i, c := range cmds {
		counts[i] = 1
		if p := c.Val(); len(p) == 1 {
			counts[i] = int(p[0].RetryCount)
		}
	}
	return counts, nil
}

// decode turns batch entries into messages. counts holds each entry's
// delivery count (nil: first delivery). Malformed entries and entries
// delivered too often are dead-lettered on the spot, and so are the events
// of an entry that fail to decode. The messages are appended to out.
func (q *Queue) decode(ctx context.Context, entries []redis.XMessage, counts []int, out []queue.Message) ([]queue.Message, error) {
	if out == nil {
		out = make([]queue.Message, 0, int(float64(len(entries))*max(q.perEntry, 1))+1)
	}
	var poison []deadLetter
	var parts []deadPart
	var ackOnly []string // entries none of whose events decoded
	for i, e := range entries {
		deliveries := 1
		if counts != nil {
			deliveries = counts[i]
		}
		raw, ok := e.Values[fieldBatch].(string)
		n := 0
		if ok && (len(e.Values) != 1 || !splitBatch(raw, func(int, string) { n++ })) {
			ok = false
		}
		if !ok || n == 0 {
			poison = append(poison, deadLetter{ID: e.ID, Cause: errors.New("decode: malformed entry")})
			continue
		}
		first := len(out)
		splitBatch(raw, func(j int, enc string) {
			m := queue.Message{ID: e.ID, Deliveries: deliveries}
			if n > 1 {
				m.ID = e.ID + partSep + strconv.Itoa(j)
			}
			if err := event.DecodeString(enc, &m.Event); err != nil {
				parts = append(parts, deadPart{ID: m.ID, Raw: enc, Cause: fmt.Errorf("decode: %w", err)})
				return
			}
			out = append(out, m)
		})
		if len(out) == first { // every event was dead-lettered
			ackOnly = append(ackOnly, e.ID)
		}
		if deliveries > q.opts.MaxDeliveries && len(out) > first {
			poison = append(poison, deadLetter{ID: e.ID, Msgs: slices.Clone(out[first:]),
				Cause: fmt.Errorf("delivered %d times without acknowledgement", deliveries)})
			clear(out[first:])
			out = out[:first]
		}
	}
	for _, p := range poison {
		if err := q.deadLetter(ctx, []deadLetter{p}, p.Cause); err != nil {
			return out, err
		}
	}
	for _, p := range parts {
		if err := q.deadPart(ctx, p.ID, p.Raw, p.Cause); err != nil {
			return out, err
		}
	}
	if len(ackOnly) > 0 {
		if err := q.rdb.XAck(ctx, q.opts.Stream, q.opts.Group, ackOnly...).Err(); err != nil {
			return out, fmt.Errorf("redisq: xack: %w", err)
		}
	}
	return out, nil
}

// EntryEvents decodes the events of a stream entry, for tools and tests
// that read the stream directly.
func EntryEvents(e redis.XMessage) ([]event.Event, error) {
	raw, ok := e.Values[fieldBatch].(string)
	if !ok {
		return nil, fmt.Errorf("redisq: entry %s has no %q field", e.ID, fieldBatch)
	}
	var evs []event.Event
	var err error
	intact := splitBatch(raw, func(_ int, enc string) {
		var ev event.Event
		if err == nil {
			err = event.DecodeString(enc, &ev)
		}
		evs = append(evs, ev)
	})
	if !intact {
		return nil, fmt.Errorf("redisq: entry %s: malformed batch", e.ID)
	}
	return evs, err
}

// deadPart is one event of a batch entry on its way to the dead-letter
// stream: the raw encoding of one that did not decode.
type deadPart struct {
	ID, Raw string
	Cause   error
}

// deadLetter is an entry on its way to the dead-letter stream, with the
// messages of its decoded events when there are any.
type deadLetter struct {
	ID    string
	Msgs  []queue.Message
	Cause error
}

// Ack acknowledges the messages' entries in the group; they are never
// handed out again. The events of a batch entry (message ids "entry/index")
// must be acknowledged together: acknowledging one acknowledges the entry.
func (q *Queue) Ack(ctx context.Context, msgs []queue.Message) error {
	ids := make([]string, 0, min(len(msgs), ackChunk))
	last := ""
	for i, m := range msgs {
		id := entryID(m.ID)
		if id != last { // else the next event of the same entry
			last = id
			ids = append(ids, id)
		}
		if len(ids) == ackChunk || (i == len(msgs)-1 && len(ids) > 0) {
			if err := q.rdb.XAck(ctx, q.opts.Stream, q.opts.Group, ids...).Err(); err != nil {
				return fmt.Errorf("redisq: xack: %w", err)
			}
			ids = ids[:0]
		}
	}
	return nil
}

// DeadLetter moves the messages to the dead-letter stream with cause as their
// "error" field. A message that is a whole entry is acknowledged with it,
// atomically, and skipped when no longer pending (already acknowledged or
// dead-lettered). A message that is one event of a batch entry is copied
// alone, once; its entry is acknowledged by the Ack of the batch's other
// events.
//
// The copy in the dead-letter stream shows the message's event as JSON
// rather than in the binary queue format.
func (q *Queue) DeadLetter(ctx context.Context, msgs []queue.Message, cause error) error {
	var dls []deadLetter
	for i := range msgs {
		m := &msgs[i]
		if strings.Contains(m.ID, partSep) {
			shown := ""
			if b, err := json.Marshal(&m.Event); err == nil {
				shown = string(b)
			}
			if err := q.deadPart(ctx, m.ID, shown, cause); err != nil {
				return err
			}
			continue
		}
		dl := deadLetter{ID: m.ID}
		if !reflect.ValueOf(m.Event).IsZero() {
			dl.Msgs = msgs[i : i+1]
		}
		dls = append(dls, dl)
	}
	return q.deadLetter(ctx, dls, cause)
}

// reason is cause's text as stored with a dead letter.
func reason(cause error) string {
	s := "unknown error"
	if cause != nil {
		s = cause.Error()
	}
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen]
	}
	return s
}

func (q *Queue) deadLetter(ctx context.Context, msgs []deadLetter, cause error) error {
	if len(msgs) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(msgs)+2)
	args = append(args, q.opts.Group, reason(cause))
	for _, dl := range msgs {
		k := len(args) + 1
		args = append(args, dl.ID, 0)
		for i := range dl.Msgs {
			if b, err := json.Marshal(&dl.Msgs[i].Event); err == nil {
				args = append(args, dl.Msgs[i].ID, string(b))
				args[k] = args[k].(int) + 1
			}
		}
	}
	keys := []string{q.opts.Stream, q.opts.DeadStream}
	if err := deadLetterScript.Run(ctx, q.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisq: dead letter: %w", err)
	}
	return nil
}

// deadPart copies one event of a batch entry, id "entry/index", to the
// dead-letter stream, once.
func (q *Queue) deadPart(ctx context.Context, id, shown string, cause error) error {
	keys := []string{q.opts.DeadStream, q.opts.DeadStream + ":seen:" + id}
	err := deadPartScript.Run(ctx, q.rdb, keys, reason(cause), id, shown, deadPartMarkerTTL.Milliseconds()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisq: dead letter: %w", err)
	}
	return nil
}
