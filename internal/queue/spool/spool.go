// Package spool keeps ingest durable while Redis is unreachable. A Spool is a
// queue.Producer in front of the Redis queue: Enqueue tries Redis with a short
// timeout and, when that fails, appends the events to a local durable queue
// instead, so the hit is still acknowledged (202) and survives a crash. A
// background replayer moves spooled events into Redis once it answers again.
//
//	rq, _ := redisq.New(client, redisq.Options{})
//	lq, _ := localq.Open("pb_data/spool", localq.Options{}) // its own directory
//	sp := spool.New(rq, lq, spool.Options{})
//	defer sp.Close()
//	err := sp.Enqueue(ctx, ev) // nil once the events are in Redis or on local disk
//
// The local queue must belong to the spool alone: the replayer is its only
// consumer.
//
// Every event reaches the stream at least once. It can reach it twice: when a
// Redis write times out but was applied, or when the process dies between a
// replayed XADD and the local acknowledgement. Event ids are unique and the
// stores insert idempotently by id, so a duplicate entry never becomes a
// duplicate row.
package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
)

var _ queue.Producer = (*Spool)(nil)

// Pinger is implemented by primaries that can report whether they answer
// (redisq.Queue does). Without it the replayer assumes recovery when there is
// nothing to replay, and the next Enqueue finds out.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options configure a Spool. The zero value of every field means its default.
type Options struct {
	// Timeout bounds one Enqueue attempt on the primary; past it the events
	// go to the local queue (default 500ms). It is also what a hit waits at
	// most before Redis is marked down.
	Timeout time.Duration

	// RetryInterval is how often the replayer tries a primary that failed
	// (default 1s).
	RetryInterval time.Duration

	// Batch is the most spooled events moved to the primary per round trip
	// (default 1000).
	Batch int

	// Logger receives the outage and recovery messages (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Stats describe the spool, for health output.
type Stats struct {
	// Spooled is the number of events on local disk waiting for Redis.
	Spooled int64 `json:"spooled"`

	// SpooledTotal counts the events ever spooled by this process.
	SpooledTotal int64 `json:"spooledTotal"`

	// Healthy is false while the primary is failing: hits then go straight
	// to the local queue without trying it.
	Healthy bool `json:"healthy"`
}

// Spool is a queue.Producer that falls back to a local queue. Safe for
// concurrent use.
type Spool struct {
	primary queue.Producer
	local   queue.Queue
	opts    Options

	healthy atomic.Bool
	total   atomic.Int64
	downMu  sync.Mutex // serialises the healthy/unhealthy transitions and their logs

	cancel context.CancelFunc
	done   chan struct{}
}

// New starts the replayer. Entries left in the local queue by an earlier
// process are replayed too. Close stops it; closing primary and local stays
// the caller's job.
func New(primary queue.Producer, local queue.Queue, opts Options) *Spool {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Spool{
		primary: primary,
		local:   local,
		opts:    opts,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	s.healthy.Store(true)
	go s.replay(ctx)
	return s
}

// tryPrimary is one Enqueue attempt on the primary, bounded by Timeout.
func (s *Spool) tryPrimary(ctx context.Context, events []event.Event) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	return s.primary.Enqueue(ctx, events...)
}

// Enqueue writes the events to the primary or, when it fails or is known to
// be down, to the local queue. It fails only when both fail or ctx ends.
func (s *Spool) Enqueue(ctx context.Context, events ...event.Event) error {
	if len(events) == 0 {
		return nil
	}
	if s.healthy.Load() {
		err := s.tryPrimary(ctx, events)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err() // the caller gave up; Redis may be fine
		}
		// Any other failure spools: unreachable, timed out, or refusing
		// writes (OOM, LOADING, READONLY). The events stay durable and the
		// health endpoint shows the spool growing.
		s.setHealthy(false, err)
	}
	if err := s.local.Enqueue(ctx, events...); err != nil {
		return fmt.Errorf("spool: redis is failing and the local spool too: %w", err)
	}
	s.total.Add(int64(len(events)))
	return nil
}

// Healthy reports whether the primary took the last write.
func (s *Spool) Healthy() bool { return s.healthy.Load() }

// Stats reports the spooled backlog.
func (s *Spool) Stats(ctx context.Context) (Stats, error) {
	st := Stats{SpooledTotal: s.total.Load(), Healthy: s.healthy.Load()}
	ls, err := s.local.Stats(ctx)
	if err != nil {
		return st, fmt.Errorf("spool: %w", err)
	}
	st.Spooled = ls.Length
	return st, nil
}

// Close stops the replayer. Events it had read and not yet moved stay in the
// local queue and are replayed by the next process.
func (s *Spool) Close() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *Spool) setHealthy(ok bool, cause error) {
	s.downMu.Lock()
	defer s.downMu.Unlock()
	if s.healthy.Load() == ok {
		return
	}
	s.healthy.Store(ok)
	if ok {
		s.opts.Logger.Info("spool: redis answers again; replaying spooled events")
	} else {
		s.opts.Logger.Warn("spool: redis is failing; spooling events to local disk", "error", cause)
	}
}

// replay moves spooled events to the primary: read a batch from the local
// queue, enqueue it to the primary (retrying the same batch until it is
// taken), then acknowledge it locally.
func (s *Spool) replay(ctx context.Context) {
	defer close(s.done)

	var held []queue.Message
	sent := false // held is in the primary; only the local ack is missing
	for ctx.Err() == nil {
		if len(held) == 0 {
			msgs, err := s.local.Read(ctx, s.opts.Batch, s.opts.RetryInterval)
			if err != nil {
				if ctx.Err() == nil {
					s.opts.Logger.Error("spool: reading the local spool", "error", err)
					s.sleep(ctx)
				}
				continue
			}
			if len(msgs) == 0 {
				if !s.healthy.Load() {
					s.probe(ctx)
				}
				continue
			}
			held, sent = msgs, false
		}

		if !sent {
			events := make([]event.Event, len(held))
			for i, m := range held {
				events[i] = m.Event
			}
			// A batch is bigger than a hit: allow it more time.
			pctx, cancel := context.WithTimeout(ctx, 4*s.opts.Timeout)
			err := s.primary.Enqueue(pctx, events...)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					s.setHealthy(false, err)
					s.sleep(ctx)
				}
				continue
			}
			sent = true
			s.setHealthy(true, nil)
		}

		if err := s.local.Ack(ctx, held); err != nil {
			if ctx.Err() == nil {
				s.opts.Logger.Error("spool: acknowledging replayed events", "error", err)
				s.sleep(ctx)
			}
			continue
		}
		held = nil
	}
}

// probe checks a primary that failed while nothing is left to replay.
func (s *Spool) probe(ctx context.Context) {
	p, ok := s.primary.(Pinger)
	if !ok {
		s.setHealthy(true, nil)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	err := p.Ping(pctx)
	cancel()
	if err == nil {
		s.setHealthy(true, nil)
		return
	}
	if !errors.Is(err, context.Canceled) {
		s.sleep(ctx)
	}
}

func (s *Spool) sleep(ctx context.Context) {
	t := time.NewTimer(s.opts.RetryInterval)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
