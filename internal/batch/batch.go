// Package batch groups concurrent calls into shared round trips (a group
// commit): one goroutine sends what is waiting in one call of a send
// function, and while that call is under way the next calls gather for the
// one after it. Idle, a call goes at once; under load, a round trip carries
// every call that came during the one before.
//
//	b := batch.New(func(keys []string) ([]any, error) {
//		return rdb.MGet(ctx, keys...).Result() // one round trip for every waiting call
//	}, 256)
//	defer b.Close()
//	v, err := b.Do(ctx, "key")
//
// It knows nothing of Redis: the Redis queue's writes and the session
// store's lookups both use it.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed answers the calls made after Close.
var ErrClosed = errors.New("batch: closed")

// Batcher sends the items of concurrent Do calls together. Safe for
// concurrent use.
type Batcher[In, Out any] struct {
	send  func(items []In) ([]Out, error)
	max   int
	calls chan *call[In, Out]
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type call[In, Out any] struct {
	ctx  context.Context
	in   In
	out  Out
	err  error
	done chan struct{}
}

// New starts a batcher whose round trips call send with at most size items
// (at least 1). send returns one result per item, in order, or an error for
// them all. It bounds its own round trip: no caller's context ends it, as a
// caller that gives up must not fail the others.
func New[In, Out any](send func(items []In) ([]Out, error), size int) *Batcher[In, Out] {
	b := &Batcher[In, Out]{
		send: send,
		max:  max(1, size),
		// Buffered: a caller leaves its call and waits only for the
		// answer, rather than first for the loop to take the call (one
		// wake-up per call, not two).
		calls: make(chan *call[In, Out], max(1, size)),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go b.loop()
	return b
}

// Do sends in with the calls waiting alongside it and returns its result.
// It returns ctx's error when ctx ends first; the item is then left out of
// a round trip that has not started yet, else sent all the same.
func (b *Batcher[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	c := &call[In, Out]{ctx: ctx, in: in, done: make(chan struct{})}
	var zero Out
	select {
	case b.calls <- c:
	case <-b.stop:
		return zero, ErrClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-b.done:
		// Closed: a call the loop took is answered by now, one it left
		// in the buffer never will be.
		select {
		case <-c.done:
			return c.out, c.err
		default:
			return zero, ErrClosed
		}
	}
}

// Close stops the batcher once the round trip under way returned; later
// calls, and those left but not yet sent, fail with ErrClosed.
func (b *Batcher[In, Out]) Close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

func (b *Batcher[In, Out]) loop() {
	defer close(b.done)
	var batch []*call[In, Out]
	for {
		select {
		case <-b.stop: // before the calls still buffered
			return
		default:
		}
		select {
		case c := <-b.calls:
			batch = append(batch[:0], c)
		case <-b.stop:
			return
		}
	gather:
		for len(batch) < b.max {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break gather
			}
		}
		b.run(batch)
		clear(batch)
	}
}

// run sends the calls of batch whose callers still wait and answers them.
func (b *Batcher[In, Out]) run(batch []*call[In, Out]) {
	items := make([]In, 0, len(batch))
	live := batch[:0:0]
	for _, c := range batch {
		if c.ctx.Err() != nil {
			close(c.done) // the caller is gone
			continue
		}
		items = append(items, c.in)
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	outs, err := b.send(items)
	if err == nil && len(outs) != len(items) {
		err = fmt.Errorf("batch: %d results for %d items", len(outs), len(items))
	}
	for i, c := range live {
		if err != nil {
			c.err = err
		} else {
			c.out = outs[i]
		}
		close(c.done)
	}
}
