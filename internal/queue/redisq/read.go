package redisq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
)

// maxErrorLen caps the error text stored with a dead letter.
const maxErrorLen = 1024

// ackChunk is the most ids per XACK command.
const ackChunk = 1000

// deadLetterScript moves pending entries to the dead-letter stream: for each
// id still pending in the group it acknowledges the entry and appends a copy
// of its fields plus "error" and "source_id". One script, so an entry is
// never both acknowledged and missing from the dead-letter stream, and a
// second call for the same id adds nothing.
//
// Each id comes with the event as JSON (or ""): it replaces a binary-encoded
// "e" field in the copy, so that an operator reading the dead-letter stream
// sees text. An entry in JSON already, or one that did not decode, is copied
// as it is.
//
// KEYS[1] stream, KEYS[2] dead stream; ARGV[1] group, ARGV[2] error,
// ARGV[3..] pairs of id and JSON.
var deadLetterScript = redis.NewScript(`
local moved = 0
for i = 3, #ARGV, 2 do
  local id, shown = ARGV[i], ARGV[i + 1]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local fields = {}
    local e = redis.call('XRANGE', KEYS[1], id, id)
    if #e > 0 then fields = e[1][2] end
    if shown ~= '' then
      for j = 1, #fields - 1, 2 do
        if fields[j] == '` + fieldEvent + `' and string.sub(fields[j + 1], 1, 1) ~= '{' then
          fields[j + 1] = shown
        end
      end
    end
    table.insert(fields, 'error')
    table.insert(fields, ARGV[2])
    table.insert(fields, 'source_id')
    table.insert(fields, id)
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    moved = moved + 1
  end
end
return moved
`)

// Read returns up to max messages. Entries left idle by a stopped consumer
// for longer than ClaimIdle come first (claimed with XAUTOCLAIM, at most every
// ClaimIdle/4 once the backlog of such entries is cleared), then new entries,
// waiting up to wait for the first one when nothing else is at hand.
// Undecodable entries and entries delivered more than MaxDeliveries times are
// moved to the dead-letter stream instead of being returned.
func (q *Queue) Read(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	if max <= 0 {
		return nil, nil
	}

	msgs, err := q.claim(ctx, max)
	if err != nil {
		return nil, err
	}
	if len(msgs) >= max {
		return msgs, nil
	}

	block := time.Duration(-1) // go-redis: negative omits BLOCK; 0 would block forever
	if len(msgs) == 0 && wait > 0 {
		block = wait
		if block < time.Millisecond {
			block = time.Millisecond
		}
	}
	// A backlog is read readChunk entries per XREADGROUP: holding the
	// reply of a whole batch while decoding it would take about as much
	// memory again as the batch.
	for len(msgs) < max {
		count := min(max-len(msgs), readChunk)
		out, err := q.readNew(ctx, count, block)
		if err != nil {
			if len(msgs) > 0 {
				return msgs, nil // claimed or read ones are ours now; hand them out
			}
			return nil, err
		}
		switch {
		case len(msgs) == 0 && len(out) < count:
			return out, nil // all there was: no copy
		case cap(msgs) < max:
			msgs = append(make([]queue.Message, 0, max), msgs...)
		}
		msgs = append(msgs, out...)
		if len(out) < count {
			break // the stream has no more for now
		}
		block = -1
	}
	return msgs, nil
}

// readChunk is the most entries per XREADGROUP.
const readChunk = 1000

// readNew reads up to count new entries, waiting up to block for the first
// (not at all when block is negative), and decodes them.
func (q *Queue) readNew(ctx context.Context, count int, block time.Duration) ([]queue.Message, error) {
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
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisq: xreadgroup: %w", err)
	}

	var fresh []redis.XMessage
	for _, s := range streams {
		fresh = append(fresh, s.Messages...)
	}
	return q.decode(ctx, fresh, nil)
}

func isNoGroup(err error) bool {
	return strings.HasPrefix(err.Error(), "NOGROUP")
}

// claim takes over entries idle for longer than ClaimIdle, when a claim
// round is due.
func (q *Queue) claim(ctx context.Context, max int) ([]queue.Message, error) {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()

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
		Count:    int64(max),
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
	return q.decode(ctx, claimed, counts)
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

// decode turns entries into messages, decoding events in the binary format
// or, for entries written by older versions, JSON. counts holds each entry's
// delivery count (nil: first delivery). Entries that fail to decode or were
// delivered too often are dead-lettered on the spot.
func (q *Queue) decode(ctx context.Context, entries []redis.XMessage, counts []int) ([]queue.Message, error) {
	out := make([]queue.Message, 0, len(entries))
	var poison []deadLetter
	for i, e := range entries {
		m := queue.Message{ID: e.ID, Deliveries: 1}
		if counts != nil {
			m.Deliveries = counts[i]
		}
		raw, ok := e.Values[fieldEvent].(string)
		if !ok {
			poison = append(poison, deadLetter{ID: m.ID, Cause: fmt.Errorf("decode: entry has no %q field", fieldEvent)})
			continue
		}
		if err := event.DecodeString(raw, &m.Event); err != nil {
			poison = append(poison, deadLetter{ID: m.ID, Cause: fmt.Errorf("decode: %w", err)})
			continue
		}
		if m.Deliveries > q.opts.MaxDeliveries {
			ev := m.Event // not &m.Event: m would escape for every entry
			poison = append(poison, deadLetter{ID: m.ID, Event: &ev,
				Cause: fmt.Errorf("delivered %d times without acknowledgement", m.Deliveries)})
			continue
		}
		out = append(out, m)
	}
	for _, p := range poison {
		if err := q.deadLetter(ctx, []deadLetter{p}, p.Cause); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deadLetter is an entry on its way to the dead-letter stream, with its
// decoded event when there is one.
type deadLetter struct {
	ID    string
	Event *event.Event
	Cause error
}

// Ack acknowledges the messages in the group; they are never handed out again.
func (q *Queue) Ack(ctx context.Context, msgs []queue.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	pipe := q.rdb.Pipeline()
	for start := 0; start < len(msgs); start += ackChunk {
		end := min(start+ackChunk, len(msgs))
		ids := make([]string, 0, end-start)
		for _, m := range msgs[start:end] {
			ids = append(ids, m.ID)
		}
		pipe.XAck(ctx, q.opts.Stream, q.opts.Group, ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisq: xack: %w", err)
	}
	return nil
}

// DeadLetter moves the messages to the dead-letter stream with cause as their
// "error" field and acknowledges them, atomically. Messages no longer pending
// (already acknowledged or dead-lettered) are skipped.
//
// The copy in the dead-letter stream shows the message's event as JSON
// rather than in the binary queue format.
func (q *Queue) DeadLetter(ctx context.Context, msgs []queue.Message, cause error) error {
	dls := make([]deadLetter, len(msgs))
	for i := range msgs {
		dls[i].ID = msgs[i].ID
		if !reflect.ValueOf(msgs[i].Event).IsZero() {
			dls[i].Event = &msgs[i].Event
		}
	}
	return q.deadLetter(ctx, dls, cause)
}

func (q *Queue) deadLetter(ctx context.Context, msgs []deadLetter, cause error) error {
	if len(msgs) == 0 {
		return nil
	}
	reason := "unknown error"
	if cause != nil {
		reason = cause.Error()
	}
	if len(reason) > maxErrorLen {
		reason = reason[:maxErrorLen]
	}
	args := make([]any, 0, 2*len(msgs)+2)
	args = append(args, q.opts.Group, reason)
	for _, m := range msgs {
		shown := ""
		if m.Event != nil {
			if b, err := json.Marshal(m.Event); err == nil {
				shown = string(b)
			}
		}
		args = append(args, m.ID, shown)
	}
	keys := []string{q.opts.Stream, q.opts.DeadStream}
	if err := deadLetterScript.Run(ctx, q.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisq: dead letter: %w", err)
	}
	return nil
}
