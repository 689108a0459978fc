// Package redisq is the Redis Streams queue: ingest appends each event to a
// stream with XADD and the flushers share the stream through one consumer
// group, so any number of app instances can produce and consume.
//
//	q, err := redisq.New(redis.NewClient(opt), redisq.Options{ClaimIdle: time.Minute})
//	...
//	err = q.Enqueue(ctx, ev)               // returns after Redis acknowledged the XADD
//	msgs, err := q.Read(ctx, 1000, time.Second)
//	err = q.Ack(ctx, msgs)                 // after the store took them
//
// Durability is Redis': an acknowledged Enqueue survives a crash of the app at
// once, and a crash of Redis itself with "appendonly yes" and
// "appendfsync everysec" (at most about one second of writes is lost on power
// loss). Redis 7.0 or newer is required (XAUTOCLAIM, XINFO GROUPS lag).
//
// Delivery is at least once: entries pending with a consumer that stopped are
// claimed by another after ClaimIdle, so the store must (and does) dedupe by
// event id. An entry that keeps coming back (MaxDeliveries) or does not decode
// is moved to the dead-letter stream, where an operator can inspect it
// (XRANGE pl:events:dead - +): events show there as JSON.
//
// An entry holds the events of one group commit in field "b": each event's
// binary encoding (event.Event.AppendBinary, which starts with its format
// byte) preceded by its length as a uvarint. One XADD, one entry and one
// acknowledgement for the hits that arrived together take most of the
// per-hit work off Redis and off the flusher's reads. An entry in any other
// shape is malformed: it is dead-lettered, not stored.
package redisq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/batch"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// fieldBatch is the entry field holding the events of one group commit.
const fieldBatch = "b"

// fieldEvent is the field of a dead letter that shows its event as JSON.
const fieldEvent = "e"

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("redisq: queue closed")

var errOldRedis = errors.New("redisq: Redis 7.0 or newer is required")

var (
	_ queue.Queue        = (*Queue)(nil)
	_ queue.DeadLetterer = (*Queue)(nil)
)

// Options configure a Queue. The zero value of every field means its default.
type Options struct {
	// Stream is the key of the event stream (default "pl:events").
	Stream string

	// Group is the consumer group shared by all flushers (default "flushers").
	Group string

	// Consumer names this process inside the group; it must be unique among
	// the running consumers (default "hostname-pid"). A name kept across
	// restarts (a node id) lets a process restarted after a crash read its
	// own pending entries at once, instead of others claiming them after
	// ClaimIdle.
	Consumer string

	// DeadStream is the key of the dead-letter stream (default "pl:events:dead").
	DeadStream string

	// ClaimIdle is how long an entry may stay pending with a consumer before
	// another consumer claims it (default config.ClaimIdle). It must be longer than the
	// slowest store insert, or healthy consumers steal each other's work
	// (harmless, the store dedupes, but wasteful).
	ClaimIdle time.Duration

	// MaxDeliveries sends an entry to the dead-letter stream when it is
	// claimed after having been handed out this many times without an
	// acknowledgement (default config.MaxDeliveries).
	MaxDeliveries int

	// MaxBatch caps the events written in one group-commit round trip,
	// and so in one entry (default 1000).
	MaxBatch int
}

func (o *Options) setDefaults() {
	if o.Stream == "" {
		o.Stream = "pl:events"
	}
	if o.Group == "" {
		o.Group = "flushers"
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "pocketlytics"
		}
		o.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	if o.DeadStream == "" {
		o.DeadStream = o.Stream + ":dead"
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = config.ClaimIdle
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = config.MaxDeliveries
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
}

// Queue is a queue.Queue on a Redis stream. Safe for concurrent use.
type Queue struct {
	rdb  *redis.Client
	opts Options

	// writes group the concurrent Enqueue calls: the events that come
	// while a round trip is under way share the next, and one entry.
	writes    *batch.Batcher[[]chunk, struct{}]
	closeOnce sync.Once

	// writer is the writes' own client on rdb's server: Close closes
	// it to end a round trip that hangs (go-redis waits out its read
	// timeout, 3 s by default, whatever the context), and rdb is the
	// caller's.
	writer *redis.Client

	// commitCtx bounds the writes' round trips; Close cancels it when
	// one hangs (Redis unreachable) for longer than closeGrace.
	commitCtx    context.Context
	cancelCommit context.CancelFunc

	// readMu serialises Reads, which share the claim cursor and the
	// entries held back from the last one.
	readMu      sync.Mutex
	ownCursor   string // next page of the pending entries left under our name
	ownDone     bool   // those are all handed out again
	claimCursor string
	nextClaim   time.Time
	held        []queue.Message // whole entries read but not yet returned
	perEntry    float64         // events per entry in the last read, to size the next
}

// chunk is n events encoded as in a batch entry.
type chunk struct {
	data []byte
	n    int
}

// New opens the queue on the stream, creating the stream and the consumer
// group when missing. A server that answers with an error (NOAUTH, a version
// older than 7.0, a key of another type) fails New; a server that cannot be
// reached does not: the queue is returned and its calls fail until Redis
// answers. The client stays owned by the caller: Close does not close it.
func New(client *redis.Client, opts Options) (*Queue, error) {
	if client == nil {
		return nil, errors.New("redisq: nil client")
	}
	opts.setDefaults()

	q := &Queue{
		rdb:         client,
		opts:        opts,
		ownCursor:   "0",
		claimCursor: "0-0",
	}
	q.commitCtx, q.cancelCommit = context.WithCancel(context.Background())
	o := *client.Options()
	o.PushNotificationProcessor = nil // client's own, bound to it; the new client makes its own
	q.writer = redis.NewClient(&o)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := q.checkVersion(ctx)
	if err == nil {
		err = q.ensureGroup(ctx)
	}
	if err != nil && (errors.Is(err, errOldRedis) || !isConnError(err)) {
		return nil, err
	}
	// Redis unreachable: start anyway, so that ingest can spool locally
	// (see package spool) during an outage that spans a restart. XADD
	// creates the stream, and Read creates the group on its first NOGROUP.

	q.writes = batch.New(q.write, q.opts.MaxBatch)
	return q, nil
}

// isConnError tells a failure to reach Redis from an error reply of a
// reachable server (wrong type, NOAUTH, an old version, ...).
func isConnError(err error) bool {
	var rerr redis.Error
	return !errors.As(err, &rerr)
}

// checkVersion refuses servers older than 7.0, whose XINFO GROUPS has no lag
// (Stats would under-report the backlog). A server that hides INFO passes.
func (q *Queue) checkVersion(ctx context.Context) error {
	info, err := q.rdb.Info(ctx, "server").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return nil // INFO disabled or renamed: trust the operator
		}
		return fmt.Errorf("redisq: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		major, _, _ := strings.Cut(v, ".")
		if n, err := strconv.Atoi(major); err == nil && n < 7 {
			return fmt.Errorf("%w: Redis %s", errOldRedis, v)
		}
	}
	return nil
}

// ensureGroup creates the stream and the group; an existing group is kept
// with its position.
func (q *Queue) ensureGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.opts.Stream, q.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redisq: create group %s on %s: %w", q.opts.Group, q.opts.Stream, err)
	}
	return nil
}

// Options returns the options in effect, defaults applied.
func (q *Queue) Options() Options { return q.opts }

// Ping reports whether Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	return q.rdb.Ping(ctx).Err()
}

// Enqueue appends the events to the stream and returns once Redis
// acknowledged them. Concurrent calls share one round trip and one entry.
// When ctx ends first, the events may still be written.
func (q *Queue) Enqueue(ctx context.Context, events ...event.Event) error {
	if len(events) == 0 {
		return nil
	}
	var chunks []chunk // MaxBatch events to a chunk
	for start := 0; start < len(events); start += q.opts.MaxBatch {
		c := chunk{n: min(len(events)-start, q.opts.MaxBatch)}
		for i := start; i < start+c.n; i++ {
			var err error
			if c.data, err = appendFramed(c.data, &events[i]); err != nil {
				return fmt.Errorf("redisq: encode event %q: %w", events[i].ID, err)
			}
		}
		chunks = append(chunks, c)
	}
	_, err := q.writes.Do(ctx, chunks)
	if errors.Is(err, batch.ErrClosed) {
		return ErrClosed
	}
	return err
}

// appendFramed appends ev's binary encoding to b, preceded by its length as
// a uvarint: one event of a batch entry.
func appendFramed(b []byte, ev *event.Event) ([]byte, error) {
	enc, err := ev.MarshalBinary()
	if err != nil {
		return b, err
	}
	b = binary.AppendUvarint(b, uint64(len(enc)))
	return append(b, enc...), nil
}

// splitBatch calls fn with each event encoding of a batch entry's value, in
// order, and reports whether the framing was intact.
func splitBatch(v string, fn func(i int, raw string)) bool {
	for i := 0; len(v) > 0; i++ {
		n, k := binary.Uvarint([]byte(v[:min(len(v), binary.MaxVarintLen64)]))
		if k <= 0 || n > uint64(len(v)-k) {
			return false
		}
		fn(i, v[k:k+int(n)])
		v = v[k+int(n):]
	}
	return true
}

// write appends the events of concurrent Enqueue calls as entries of at
// most MaxBatch events, usually one, in one pipelined round trip, and returns
// the first error for them all. Some entries may be written when another
// fails: the spool's replay of a failed call meets the written copies in the
// store's check by event id.
func (q *Queue) write(calls [][]chunk) ([]struct{}, error) {
	var entries [][]byte
	var cur []byte
	n := 0
	for _, chunks := range calls {
		for _, c := range chunks {
			if n > 0 && n+c.n > q.opts.MaxBatch {
				entries, cur, n = append(entries, cur), nil, 0
			}
			cur, n = append(cur, c.data...), n+c.n
		}
	}
	entries = append(entries, cur)

	// Not the callers' contexts: one caller giving up must not fail the
	// others' writes. The client's timeouts bound the round trip.
	ctx := q.commitCtx
	pipe := q.writer.Pipeline()
	cmds := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream, Values: []any{fieldBatch, e}})
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return nil, fmt.Errorf("redisq: xadd: %w", err)
		}
	}
	return make([]struct{}, len(calls)), nil
}

// closeGrace is how long Close lets a round trip in flight finish.
const closeGrace = time.Second

// Close stops the writes after the round trip in flight (interrupting it
// after a second when Redis does not answer); Enqueue calls after it fail
// with ErrClosed. It also removes this consumer from the group when it holds
// no pending entries, so restarts do not pile up consumer names. The Redis
// client passed to New is left open.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		stopped := make(chan struct{})
		go func() {
			q.writes.Close()
			close(stopped)
		}()
		select {
		case <-stopped:
			q.writer.Close()
		case <-time.After(closeGrace):
			q.cancelCommit()
			q.writer.Close() // ends the round trip in flight at once
			<-stopped
			return // Redis is not answering: leave the consumer be
		}
		defer q.cancelCommit()

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// DELCONSUMER drops the consumer's pending entries with it, so only
		// a consumer with none is removed.
		p, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: q.opts.Stream, Group: q.opts.Group, Consumer: q.opts.Consumer,
			Start: "-", End: "+", Count: 1,
		}).Result()
		if err == nil && len(p) == 0 {
			q.rdb.XGroupDelConsumer(ctx, q.opts.Stream, q.opts.Group, q.opts.Consumer)
		}
	})
	return nil
}
