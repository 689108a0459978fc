// Package flush moves events from the durable queue into the analytics
// store: it reads them in batches, inserts each batch, and acknowledges the
// queue entries only after the insert succeeded, so an event leaves the
// queue only once it is stored.
//
// A failed insert is retried with the same batch and the same token (the
// stores make that idempotent) with exponential backoff, for as long as it
// takes: while the store is down the queue absorbs the backlog. An insert
// that fails with a permanent error (store.IsPermanent) is bisected to find
// the entries the store rejects; those go to the queue's dead-letter log
// (when it has one) after Options.MaxDeliveries failures, and the rest of
// the batch is stored.
//
// Usage:
//
//	f := flush.New(q, s, flush.Options{Logger: app.Logger()})
//	go func() { done <- f.Run(ctx) }() // returns after ctx ends and what it held is stored
package flush

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
	"github.com/pocketlytics/pocketlytics/internal/queue"
	"github.com/pocketlytics/pocketlytics/internal/store"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// Options configure a Flusher. Zero values select the defaults.
type Options struct {
	// BatchSize is the events per store insert (default config.FlushBatch): a batch is
	// stored once it has this many, or once Interval passed. A queue that
	// hands out entries of several events whole (redisq) may take a batch
	// past it, by less than one entry.
	BatchSize int

	// Interval is the longest an event waits in a partial batch, counted
	// from its arrival in the queue, before the batch is inserted anyway
	// (default config.FlushInterval).
	Interval time.Duration

	// MaxDeliveries is how many failed attempts an entry that the store
	// rejects gets, counting earlier deliveries, before it is dead-lettered
	// (default config.MaxDeliveries).
	MaxDeliveries int

	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// insert, read or ack; it doubles per attempt, with jitter
	// (defaults 100ms and 30s).
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// DrainTimeout bounds how long Run keeps trying to store what it holds
	// after its context ended (default 10s). What is not stored by then
	// stays unacknowledged in the queue for the next start.
	DrainTimeout time.Duration

	// Logger receives insert failures and dead-letter notices
	// (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = config.FlushBatch
	}
	if o.Interval <= 0 {
		o.Interval = config.FlushInterval
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = config.MaxDeliveries
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// statser is implemented by queues that report their backlog.
type statser interface {
	Stats(ctx context.Context) (queue.Stats, error)
}

// Flusher is the single consumer between a queue and a store.
type Flusher struct {
	c     queue.Consumer
	w     store.Writer
	dl    queue.DeadLetterer // nil when the queue cannot set entries aside
	stats statser            // nil when the queue has no stats
	opts  Options
	log   *slog.Logger

	lastFlush atomic.Int64 // unix nanoseconds of the last stored batch

	unique uniqueEvents // used by the writer goroutine only

	// spare holds a batch buffer whose messages were stored and
	// acknowledged, for the reader to gather the next batch in: a batch
	// gathered from many small reads would otherwise grow a new buffer
	// (about 2 MB at 5,000 events) every flush.
	spare chan []queue.Message
}

// New returns a Flusher reading from c and writing to w. If c implements
// queue.DeadLetterer, entries the store keeps rejecting are set aside;
// otherwise they are retried forever, never dropped.
func New(c queue.Consumer, w store.Writer, opts Options) *Flusher {
	opts = opts.withDefaults()
	f := &Flusher{c: c, w: w, opts: opts, log: opts.Logger, spare: make(chan []queue.Message, 1)}
	f.dl, _ = c.(queue.DeadLetterer)
	f.stats, _ = c.(statser)
	return f
}

// Run flushes until ctx ends, then stores what it holds (within
// Options.DrainTimeout) and returns. It returns nil after a complete drain,
// and an error when held events could not be stored in time; those stay
// in the queue unacknowledged and are delivered again on the next start.
//
// Reading, storing and acknowledging overlap: while a batch is inserted,
// the next one is read and decoded, and the one stored before it is
// acknowledged. The reader holds at most one batch ahead of the insert, so
// memory stays bounded (about three batches), and acknowledgements keep
// queue order (localq acknowledges everything up to a batch's highest id).
func (f *Flusher) Run(ctx context.Context) error {
	// The writer outlives ctx by DrainTimeout, to store what was read.
	wctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	// Unbuffered: the reader holds at most one batch ahead of the writer.
	batches := make(chan []queue.Message)
	// lost counts the events read but not stored; the writer sets it.
	var lost int
	written := make(chan struct{})
	go func() {
		defer close(written)
		lost = f.write(wctx, batches)
	}()

	held := f.read(ctx, batches)

	drain := time.AfterFunc(f.opts.DrainTimeout, func() { cancel(context.DeadlineExceeded) })
	defer drain.Stop()
	if len(held) > 0 {
		select {
		case batches <- held:
			held = nil
		case <-wctx.Done(): // the writer is stuck past the deadline
		}
	}
	close(batches)
	<-written
	if lost += len(held); lost > 0 {
		return fmt.Errorf("flush: %d events not stored before shutdown, they stay queued: %w", lost, context.Cause(wctx))
	}
	return nil
}

// arrival is when the oldest of msgs reached the queue (its event's time,
// set on ingest), or now if that is later (another instance's clock): a
// batch's age counts from there, so the tail of a backlog, which waited in
// the queue long enough, is stored at once rather than one Interval later.
func arrival(msgs []queue.Message, now time.Time) time.Time {
	t := now
	for i := range msgs {
		if et := msgs[i].Event.Time; !et.IsZero() && et.Before(t) {
			t = et
		}
	}
	return t
}

// read gathers batches from the queue and hands them to the writer until
// ctx ends. It returns the batch it held then (nil if none).
func (f *Flusher) read(ctx context.Context, batches chan<- []queue.Message) []queue.Message {
	var held []queue.Message
	var since time.Time // when the oldest held message arrived
	readFailures := 0

	for ctx.Err() == nil {
		wait := f.opts.Interval
		if len(held) > 0 {
			wait = max(time.Until(since.Add(f.opts.Interval)), 0)
		}
		msgs, err := f.readMore(ctx, held, wait)
		if len(held) == 0 && len(msgs) > 0 {
			since = arrival(msgs, time.Now())
		}
		held = msgs
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			f.log.Warn("flush: reading the queue failed", slog.Int("attempt", readFailures+1), slog.String("error", err.Error()))
			if f.sleep(ctx, f.backoff(readFailures)) != nil {
				break
			}
			readFailures++
			continue
		}
		readFailures = 0

		if len(held) == 0 {
			f.updateDepth(ctx)
			continue
		}
		if left := f.opts.Interval - time.Since(since); len(held) < f.opts.BatchSize && left > 0 {
			// The queue had less than a batch: let more gather before
			// reading again. Read returns as soon as one entry is there,
			// so under a steady trickle the flusher would otherwise pay a
			// round trip per event (Redis: an XREADGROUP per hit).
			if f.sleep(ctx, min(left, f.readGap())) != nil {
				break
			}
			continue
		}
		select {
		case batches <- held:
			held = nil
		case <-ctx.Done():
			// Still held: Run hands it to the writer for the drain.
		}
	}
	return held
}

// write stores the batches it receives and acknowledges each after its
// insert, the acknowledgement running alongside the next insert. Once ctx
// ends (the drain deadline) it stores nothing more and returns how many
// events it received but did not store; those are not acknowledged.
func (f *Flusher) write(ctx context.Context, batches <-chan []queue.Message) (lost int) {
	acked := make(chan struct{}) // closed when the last acknowledgement is done
	close(acked)
	defer func() { <-acked }()

	for msgs := range batches {
		if lost > 0 || f.store(ctx, msgs, 0) != nil {
			lost += len(msgs) // store fails only when ctx ends
			continue
		}
		f.lastFlush.Store(time.Now().UnixNano())
		// The acknowledgement needs the ids only: let the events go.
		for i := range msgs {
			msgs[i].Event = event.Event{}
		}

		// One acknowledgement at a time, in order: localq acknowledges
		// all entries up to a batch's highest id.
		<-acked
		done := make(chan struct{})
		acked = done
		go func() {
			defer close(done)
			f.ack(ctx, msgs)
			f.recycle(msgs)
			f.updateDepth(ctx)
		}()
	}
	return lost
}

// readMore reads up to a batch's worth of messages after held, and
// returns held with them. A queue that can read onto a buffer (redisq) reads
// onto held, or onto the spare buffer when nothing is held yet; the others'
// messages are copied there, unless a read brought a whole batch (a
// backlog), which is kept as it is and no spare is kept while the backlog
// drains. On an error the spare buffer is kept for the next read.
func (f *Flusher) readMore(ctx context.Context, held []queue.Message, wait time.Duration) ([]queue.Message, error) {
	max := f.opts.BatchSize - len(held)
	if ar, ok := f.c.(queue.AppendReader); ok {
		dst := held
		if dst == nil {
			dst = f.buffer()
		}
		msgs, err := ar.ReadAppend(ctx, dst, max, wait)
		if len(msgs) == 0 && cap(msgs) > 0 {
			select { // still empty and clear: the spare again
			case f.spare <- msgs:
			default:
			}
			return nil, err
		}
		return msgs, err
	}
	msgs, err := f.c.Read(ctx, max, wait)
	switch {
	case err != nil || len(msgs) == 0:
		return held, err
	case held == nil && len(msgs) >= f.opts.BatchSize:
		f.buffer() // drop the spare
		return msgs, nil
	case held == nil:
		return append(f.buffer(), msgs...), nil
	default:
		return append(held, msgs...), nil
	}
}

// buffer returns an empty batch buffer, a spare one if there is one.
func (f *Flusher) buffer() []queue.Message {
	select {
	case b := <-f.spare:
		return b
	default:
		return nil
	}
}

// recycle keeps msgs, stored and acknowledged, as the spare buffer.
func (f *Flusher) recycle(msgs []queue.Message) {
	if cap(msgs) > 2*f.opts.BatchSize {
		return // not one the reader grew (append at most doubles a batch)
	}
	clear(msgs[:cap(msgs)])
	select {
	case f.spare <- msgs[:0]:
	default:
	}
}

// LastFlush returns when a batch was last stored; zero before the first.
func (f *Flusher) LastFlush() time.Time {
	if n := f.lastFlush.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// store inserts msgs, retrying transient failures until ctx ends. When the
// store rejects the batch outright it splits the batch in halves to find
// the entries at fault and dead-letters those. failures counts the
// permanent failures of batches that contained all of msgs.
func (f *Flusher) store(ctx context.Context, msgs []queue.Message, failures int) error {
	// The writer's buffer: a bisected half reuses it only after this
	// call's last use of events.
	events := f.unique.events(msgs)
	defer f.unique.release()
	token := Token(msgs)

	for transient := 0; ; {
		start := time.Now()
		err := f.w.Insert(ctx, token, events)
		if err == nil {
			if transient > 0 {
				f.log.Info("flush: insert succeeded after retries", slog.Int("events", len(events)), slog.Int("attempts", transient+1))
			}
			metrics.FlushLatency.Observe(time.Since(start).Seconds())
			metrics.BatchSize.Observe(float64(len(events)))
			metrics.FlushedRows.Add(float64(len(events)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		metrics.InsertErrors.Inc()

		if !store.IsPermanent(err) || f.dl == nil {
			// The backoff doubles up to MaxBackoff: an outage writes a few
			// entries, then one per MaxBackoff.
			d := f.backoff(transient)
			f.log.Warn("flush: insert failed, retrying", slog.Int("events", len(events)), slog.Int("attempt", transient+1),
				slog.String("retryIn", d.Round(time.Millisecond).String()), slog.String("error", err.Error()))
			if err := f.sleep(ctx, d); err != nil {
				return err
			}
			transient++
			continue
		}

		failures++
		if len(msgs) > 1 {
			mid := len(msgs) / 2
			if err := f.store(ctx, msgs[:mid], failures); err != nil {
				return err
			}
			return f.store(ctx, msgs[mid:], failures)
		}
		// Earlier deliveries count as failed attempts too.
		if max(msgs[0].Deliveries-1, 0)+failures >= f.opts.MaxDeliveries {
			return f.deadLetter(ctx, msgs, err)
		}
		if err := f.sleep(ctx, f.opts.MinBackoff); err != nil {
			return err
		}
	}
}

// deadLetter sets a rejected entry aside, retrying until ctx ends.
func (f *Flusher) deadLetter(ctx context.Context, msgs []queue.Message, cause error) error {
	for attempt := 0; ; attempt++ {
		err := f.dl.DeadLetter(ctx, msgs, cause)
		if err == nil {
			for _, m := range msgs {
				f.log.Warn("flush: event dead-lettered", slog.String("id", m.ID), slog.String("event", m.Event.ID),
					slog.Int("deliveries", m.Deliveries), slog.String("error", cause.Error()))
			}
			return nil
		}
		f.log.Error("flush: dead-lettering failed", slog.String("error", err.Error()))
		if err := f.sleep(ctx, f.backoff(attempt)); err != nil {
			return err
		}
	}
}

// ack acknowledges a stored batch. If the queue keeps failing, the entries
// are left to be delivered again: the stores ignore the duplicates.
func (f *Flusher) ack(ctx context.Context, msgs []queue.Message) {
	const attempts = 5
	for attempt := 0; attempt < attempts; attempt++ {
		err := f.c.Ack(ctx, msgs)
		if err == nil {
			return
		}
		f.log.Warn("flush: ack failed", slog.Int("events", len(msgs)), slog.Int("attempt", attempt+1), slog.String("error", err.Error()))
		if attempt+1 == attempts || f.sleep(ctx, f.backoff(attempt)) != nil {
			return
		}
	}
}

func (f *Flusher) updateDepth(ctx context.Context) {
	if f.stats == nil {
		return
	}
	if st, err := f.stats.Stats(ctx); err == nil {
		metrics.QueueDepth.Set(float64(st.Length))
	}
}

// maxReadGap bounds the pause between reads of a partial batch, so a batch
// that fills up meanwhile waits at most this long.
const maxReadGap = 100 * time.Millisecond

// readGap is the pause between reads of a partial batch: a tenth of the
// interval, at most maxReadGap.
func (f *Flusher) readGap() time.Duration {
	return min(f.opts.Interval/10, maxReadGap)
}

// backoff returns the wait before retry number attempt (from 0): doubling
// from MinBackoff up to MaxBackoff, with jitter so that restarted peers
// don't retry in step.
func (f *Flusher) backoff(attempt int) time.Duration {
	d := f.opts.MaxBackoff
	if attempt < 32 {
		if b := f.opts.MinBackoff << attempt; b > 0 && b < d {
			d = b
		}
	}
	return d/2 + rand.N(d/2+1)
}

func (f *Flusher) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Token derives a batch's idempotency token from its message ids: the same
// messages give the same token, so a retried or redelivered batch can be
// recognised by stores that deduplicate by token.
func Token(msgs []queue.Message) string {
	h := sha256.New()
	for _, m := range msgs {
		h.Write([]byte(m.ID))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// uniqueEvents is the writer's buffer for a batch's events without repeats
// of an event id: reused, it spares a copy of every batch's events.
//
// A queue may hold an event twice (a Redis write that timed out but landed,
// then spooled and replayed); when both copies meet in one batch, the
// store's check against rows already stored cannot see the repeat.
type uniqueEvents struct {
	buf  []event.Event
	seen map[string]struct{}
}

// events returns the events of msgs, each id once; valid until release.
func (u *uniqueEvents) events(msgs []queue.Message) []event.Event {
	if u.seen == nil {
		u.seen = make(map[string]struct{}, len(msgs))
	}
	clear(u.seen)
	u.buf = slices.Grow(u.buf[:0], len(msgs))
	for i := range msgs {
		id := msgs[i].Event.ID
		if _, dup := u.seen[id]; dup {
			continue
		}
		u.seen[id] = struct{}{}
		u.buf = append(u.buf, msgs[i].Event)
	}
	return u.buf
}

// release drops the references to the events, so that a stored batch's
// strings are not kept alive by the buffer.
func (u *uniqueEvents) release() {
	clear(u.buf[:cap(u.buf)]) // a bisected half may have left a shorter length
	clear(u.seen)
}
