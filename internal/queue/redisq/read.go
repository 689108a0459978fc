package redisq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

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
// KEYS[1] stream, KEYS[2] dead stream; ARGV[1] group, ARGV[2] error, ARGV[3..] ids.
var deadLetterScript = redis.NewScript(`
local moved = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local fields = {}
    local e = redis.call('XRANGE', KEYS[1], id, id)
    if #e > 0 then fields = e[1][2] end
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

// decode turns entries into messages. counts holds each entry's delivery
// count (nil: first delivery). Entries that fail to decode or were delivered
// too often are dead-lettered on the spot.
func (q *Queue) decode(ctx context.Context, entries []redis.XMessage, counts []int) ([]queue.Message, error) {
	out := make([]queue.Message, 0, len(entries))
	var poison []queue.Message
	var causes []error
	for i, e := range entries {
		m := queue.Message{ID: e.ID, Deliveries: 1}
		if counts != nil {
			m.Deliveries = counts[i]
		}
		if m.Deliveries > q.opts.MaxDeliveries {
			poison = append(poison, m)
			causes = append(causes, fmt.Errorf("delivered %d times without acknowledgement", m.Deliveries))
			continue
		}
		raw, ok := e.Values[fieldEvent].(string)
		if !ok {
			poison = append(poison, m)
			causes = append(causes, fmt.Errorf("decode: entry has no %q field", fieldEvent))
			continue
		}
		if err := json.Unmarshal([]byte(raw), &m.Event); err != nil {
			poison = append(poison, m)
			causes = append(causes, fmt.Errorf("decode: %w", err))
			continue
		}
		out = append(out, m)
	}
	for i := range poison {
		if err := q.DeadLetter(ctx, poison[i:i+1], causes[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
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
func (q *Queue) DeadLetter(ctx context.Context, msgs []queue.Message, cause error) error {
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
	args := make([]any, 0, len(msgs)+2)
	args = append(args, q.opts.Group, reason)
	for _, m := range msgs {
		args = append(args, m.ID)
	}
	keys := []string{q.opts.Stream, q.opts.DeadStream}
	if err := deadLetterScript.Run(ctx, q.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisq: dead letter: %w", err)
	}
	return nil
}
