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
// An entry holds the events of one group commit (FormatBatch, field "b"):
// one XADD, one entry and one acknowledgement for the hits that arrived
// together, which takes most of the per-hit work off Redis and off the
// flusher's reads. Entries of one event in the binary encoding or in JSON
// (field "e"), as older versions queue them, are still read.
//
// When sessions are shared through Redis, an event may come with its
// session lookup (identity.Deferred, in event.Pending): the group commit
// then writes its entry with identity.WriteEntry's script, which looks the
// sessions up in the same call and records them in the entry (field "s");
// Read sets them on the events, which carry a guess until then.
package redisq

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// fieldEvent is the entry field holding one event in its binary encoding
// (see event.Event.AppendBinary), or as JSON in entries written by versions
// before it and in dead letters.
const fieldEvent = "e"

// fieldBatch is the entry field holding the events of one group commit:
// each event's binary encoding preceded by its length as a uvarint.
const fieldBatch = "b"

// Format is how Enqueue writes entries.
type Format string

const (
	// FormatBatch writes the events of a group commit into one entry
	// (the default).
	FormatBatch Format = "batch"
	// FormatEvent writes one entry per event in the binary encoding, as
	// versions before FormatBatch do.
	FormatEvent Format = "event"
	// FormatJSON writes one entry per event as JSON, as versions before
	// the binary encoding do.
	FormatJSON Format = "json"
)

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("redisq: queue closed")

// ErrTimeout is returned by Enqueue when Redis did not acknowledge the
// events within Options.EnqueueTimeout.
var ErrTimeout = errors.New("redisq: enqueue timed out")

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
	// the running consumers (default "hostname-pid").
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

	// EnqueueTimeout bounds how long Enqueue waits for Redis; past it,
	// Enqueue fails with ErrTimeout, and the events may still be written.
	// Zero: only the caller's context bounds it. Cheaper than a context
	// deadline per call, which costs the ingest path an allocation-heavy
	// timer and cancellation per hit.
	EnqueueTimeout time.Duration

	// Format is how entries are written (default FormatBatch). The older
	// formats are for a rolling upgrade from a version that wrote them:
	// its instances still consuming the stream cannot read the newer
	// formats and would dead-letter such entries. Reads take all formats.
	Format Format
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
	if o.Format == "" {
		o.Format = FormatBatch
	}
}

// Queue is a queue.Queue on a Redis stream. Safe for concurrent use.
type Queue struct {
	rdb  *redis.Client
	opts Options

	// Enqueue hands requests to the committer over an unbuffered channel:
	// senders wait in the channel while a round trip is in flight and the
	// committer takes all of them for the next one.
	reqs      chan *request
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// writer is the committer's own client on rdb's server: Close closes
	// it to end a round trip that hangs (go-redis waits out its read
	// timeout, 3 s by default, whatever the context), and rdb is the
	// caller's.
	writer *redis.Client

	// commitCtx bounds the committer's round trips; Close cancels it when
	// one hangs (Redis unreachable) for longer than closeGrace.
	commitCtx    context.Context
	cancelCommit context.CancelFunc

	// readMu serialises Reads, which share the claim cursor and the
	// entries held back from the last one.
	readMu      sync.Mutex
	claimCursor string
	nextClaim   time.Time
	held        []queue.Message            // whole entries read but not yet returned
	perEntry    float64                    // events per entry in the last read, to size the next
	sessions    []identity.RecordedSession // decode's buffer for an entry's recorded sessions

	requests sync.Pool // of *request
}

type request struct {
	// payloads holds one entry value per event (FormatEvent, FormatJSON)
	// or, in FormatBatch, the request's events in values of MaxBatch
	// events (the last one holds the rest).
	payloads []string
	n        int // events in the request
	// pending holds the request's events whose session lookup rides along
	// (FormatBatch), by index among the request's events.
	pending []identity.DeferredAt
	done    chan error // buffered: the committer never blocks on a caller
	timer   *time.Timer
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
		reqs:        make(chan *request),
		closed:      make(chan struct{}),
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

	q.wg.Add(1)
	go q.commitLoop()
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
// acknowledged them. Concurrent calls share one round trip and, in
// FormatBatch, one entry. When ctx ends first, or Options.EnqueueTimeout
// passes, the events may still be written.
func (q *Queue) Enqueue(ctx context.Context, events ...event.Event) error {
	if len(events) == 0 {
		return nil
	}
	r := q.request(len(events))
	if q.opts.Format == FormatBatch {
		for i := range events {
			if d, ok := events[i].Pending.(*identity.Deferred); ok {
				r.pending = append(r.pending, identity.DeferredAt{Index: i, Hit: d})
			}
		}
	}
	if err := q.encode(r, events); err != nil {
		q.requests.Put(r)
		return err
	}
	var timeout <-chan time.Time
	if q.opts.EnqueueTimeout > 0 {
		r.timer.Reset(q.opts.EnqueueTimeout)
		timeout = r.timer.C
	}

	var err error
	select {
	case q.reqs <- r:
	case <-q.closed:
		err = ErrClosed
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrTimeout
	}
	if err != nil { // the committer never saw r
		r.timer.Stop()
		q.requests.Put(r)
		return err
	}

	select {
	case err := <-r.done:
		r.timer.Stop()
		q.requests.Put(r)
		return err
	case <-ctx.Done():
		return ctx.Err() // the committer still holds r: not reused
	case <-timeout:
		return ErrTimeout
	}
}

// request returns a request for n events from the pool.
func (q *Queue) request(n int) *request {
	r, _ := q.requests.Get().(*request)
	if r == nil {
		r = &request{done: make(chan error, 1), timer: time.NewTimer(time.Hour)}
		r.timer.Stop()
	}
	r.n = n
	clear(r.pending)
	r.pending = r.pending[:0]
	if q.opts.Format == FormatBatch {
		n = (n + q.opts.MaxBatch - 1) / q.opts.MaxBatch
	}
	if cap(r.payloads) < n {
		r.payloads = make([]string, n)
	}
	r.payloads = r.payloads[:n]
	return r
}

// encodeBufs holds encoding buffers between Enqueue calls and commits.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuf is the largest buffer kept in encodeBufs.
const maxPooledBuf = 64 << 10

// encode sets r's payloads to the events in the queue's format. The
// payloads share one string: one allocation per call, whatever the number
// of events.
func (q *Queue) encode(r *request, events []event.Event) error {
	if q.opts.Format == FormatJSON {
		for i := range events {
			b, err := json.Marshal(&events[i])
			if err != nil {
				return fmt.Errorf("redisq: encode event %q: %w", events[i].ID, err)
			}
			r.payloads[i] = string(b)
		}
		return nil
	}
	bp := encodeBufs.Get().(*[]byte)
	defer encodeBufs.Put(bp)
	buf := (*bp)[:0]
	var ends [16]int
	end := ends[:0]
	for i := range events {
		var err error
		if q.opts.Format == FormatBatch {
			buf, err = appendFramed(buf, &events[i])
		} else {
			buf, err = events[i].AppendBinary(buf)
		}
		if err != nil {
			return fmt.Errorf("redisq: encode event %q: %w", events[i].ID, err)
		}
		if q.opts.Format != FormatBatch || (i+1)%q.opts.MaxBatch == 0 || i+1 == len(events) {
			end = append(end, len(buf))
		}
	}
	if cap(buf) <= maxPooledBuf {
		*bp = buf
	}
	all, start := string(buf), 0
	for i, e := range end {
		r.payloads[i], start = all[start:e], e
	}
	return nil
}

// appendFramed appends ev's binary encoding to b, preceded by its length as
// a uvarint: one event of a batch entry.
func appendFramed(b []byte, ev *event.Event) ([]byte, error) {
	// The length goes in front of an encoding not yet made: reserve the
	// most bytes a length takes below 2 MiB, then close the gap.
	const reserve = 3
	at := len(b)
	b = append(b, make([]byte, reserve)...)
	b, err := ev.AppendBinary(b)
	if err != nil {
		return b[:at], err
	}
	n := len(b) - at - reserve
	var lenBuf [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lenBuf[:], uint64(n))
	if k > reserve {
		b = append(b, make([]byte, k-reserve)...)
	}
	copy(b[at+k:], b[at+reserve:at+reserve+n])
	copy(b[at:], lenBuf[:k])
	return b[:at+k+n], nil
}

// splitBatch calls fn with each event encoding of a batch entry's value, in
// order, and reports whether the framing was intact.
func splitBatch(v string, fn func(i int, raw string)) bool {
	for i := 0; len(v) > 0; i++ {
		n, k := binary.Uvarint([]byte(v[:min(len(v), binary.MaxVarintLen64)])) // no copy: read only
		if k <= 0 || n > uint64(len(v)-k) {
			return false
		}
		fn(i, v[k:k+int(n)])
		v = v[k+int(n):]
	}
	return true
}

// maxLookups caps the session lookups that ride along with one group
// commit: the script call runs them all while Redis waits (a few
// microseconds each), as identity's own calls are capped.
const maxLookups = 256

// commitLoop is the one goroutine that writes: it takes the first waiting
// request, then every other one already waiting or that comes while it
// yields once (up to MaxBatch events and maxLookups session lookups), and
// sends them all in one round trip.
func (q *Queue) commitLoop() {
	defer q.wg.Done()

	batch := make([]*request, 0, 64)
	for {
		select {
		case r := <-q.reqs:
			batch = append(batch[:0], r)
		case <-q.closed:
			return
		}

		n, lookups := batch[0].n, len(batch[0].pending)
		for yielded := false; ; yielded = true {
		collect:
			for n < q.opts.MaxBatch && lookups < maxLookups {
				select {
				case r := <-q.reqs:
					batch = append(batch, r)
					n += r.n
					lookups += len(r.pending)
				default:
					break collect
				}
			}
			if yielded || n >= q.opts.MaxBatch || lookups >= maxLookups {
				break
			}
			// Let the goroutines that are ready run first: under load some
			// are hits about to be queued, which then share this round
			// trip. Idle, it returns at once. Flat out, commits carry about
			// twice as many hits, and Redis spends 2–3 µs less per hit.
			runtime.Gosched()
		}

		q.commit(batch)
		clear(batch)
	}
}

func (q *Queue) commit(batch []*request) {
	if q.opts.Format == FormatBatch {
		q.commitBatch(batch)
		return
	}

	// Not the callers' contexts: one caller giving up must not fail the
	// others' writes. The client's timeouts and retries bound the round trip.
	ctx := q.commitCtx

	pipe := q.writer.Pipeline()
	cmds := make([]*redis.StringCmd, 0, len(batch))
	for _, r := range batch {
		for _, p := range r.payloads {
			cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{
				Stream: q.opts.Stream,
				Values: []string{fieldEvent, p},
			}))
		}
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below

	i := 0
	for _, r := range batch {
		var err error
		for range r.payloads {
			if e := cmds[i].Err(); e != nil && err == nil {
				err = fmt.Errorf("redisq: xadd: %w", e)
			}
			i++
		}
		r.done <- err
	}
}

// entry is one batch entry of a group commit: its value and the events in
// it whose session lookup rides along, by index in the entry.
type entry struct {
	value   any // string or []byte
	lookups []identity.DeferredAt
}

// commitBatch writes the requests' events as entries of at most MaxBatch
// events, usually one, in one round trip. An entry with session lookups is
// written by identity.WriteEntry's script, which looks them up in the same
// call.
func (q *Queue) commitBatch(batch []*request) {
	bp := encodeBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	entries := make([]entry, 0, 1)

	// lookupsOf appends r's lookups among the events of its payload i,
	// indexed from offset, the payload's place in its entry.
	lookups := 0
	lookupsOf := func(dst []identity.DeferredAt, r *request, i, offset int) []identity.DeferredAt {
		for _, p := range r.pending {
			if p.Index/q.opts.MaxBatch == i {
				p.Index = offset + p.Index%q.opts.MaxBatch
				dst = append(dst, p)
				lookups++
			}
		}
		return dst
	}

	// Values of MaxBatch events go alone; smaller ones (the last of each
	// request) share entries of up to MaxBatch events.
	n, split, shared := 0, false, -1 // shared: the entry being filled
	for _, r := range batch {
		for i, p := range r.payloads {
			events := min(r.n-i*q.opts.MaxBatch, q.opts.MaxBatch)
			switch {
			case len(batch) == 1 || events == q.opts.MaxBatch:
				entries = append(entries, entry{value: p, lookups: lookupsOf(nil, r, i, 0)}) // no copy
			default:
				if n+events > q.opts.MaxBatch {
					entries[shared].value = buf
					buf, n, split, shared = buf[len(buf):], 0, true, -1 // the entry still holds buf's bytes
				}
				if shared < 0 {
					shared = len(entries)
					entries = append(entries, entry{})
				}
				entries[shared].lookups = lookupsOf(entries[shared].lookups, r, i, n)
				buf = append(buf, p...)
				n += events
			}
		}
	}
	if shared >= 0 {
		entries[shared].value = buf
	}

	var err error
	if lookups == 0 {
		err = q.writeEntries(entries)
	} else {
		err = q.writeEntriesWithLookups(entries)
	}
	// The requests' events may be in several entries, some written: each
	// caller gets the first error, and the spool's replay of the failed
	// ones meets the written copies in the store's check by event id.
	for _, r := range batch {
		r.done <- err
	}
	if !split && cap(buf) <= maxPooledBuf {
		*bp = buf[:0]
		encodeBufs.Put(bp)
	}
}

// writeEntries appends the entries in one pipeline and returns the first
// error.
func (q *Queue) writeEntries(entries []entry) error {
	ctx := q.commitCtx
	pipe := q.writer.Pipeline()
	cmds := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: q.opts.Stream,
			Values: []any{fieldBatch, e.value},
		})
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return fmt.Errorf("redisq: xadd: %w", err)
		}
	}
	return nil
}

// writeEntriesWithLookups appends the entries one after the other, those
// with session lookups through identity.WriteEntry, and returns the first
// error. A group commit is one entry but for the rare one over MaxBatch
// events, so this is one round trip.
func (q *Queue) writeEntriesWithLookups(entries []entry) error {
	ctx := q.commitCtx
	var first error
	for _, e := range entries {
		var err error
		if len(e.lookups) > 0 {
			_, err = identity.WriteEntry(ctx, q.writer, q.opts.Stream, fieldBatch, e.value, e.lookups)
		} else {
			err = q.writer.XAdd(ctx, &redis.XAddArgs{Stream: q.opts.Stream, Values: []any{fieldBatch, e.value}}).Err()
		}
		if err != nil && first == nil {
			first = fmt.Errorf("redisq: xadd: %w", err)
		}
	}
	return first
}

// closeGrace is how long Close lets a round trip in flight finish.
const closeGrace = time.Second

// Close stops the committer after the round trip in flight (interrupting it
// after a second when Redis does not answer); Enqueue calls after it fail
// with ErrClosed. It also removes this consumer from the group when it holds
// no pending entries, so restarts do not pile up consumer names. The Redis
// client passed to New is left open.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		close(q.closed)
		stopped := make(chan struct{})
		go func() {
			q.wg.Wait()
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
