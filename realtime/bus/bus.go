// Package bus carries live messages to every instance of Pocketlytics: each
// instance hands the messages of the hits it accepted to the bus, and every
// instance's handler receives every message, whichever instance published it.
//
// Local is the in-process bus of a single instance; Redis uses Redis pub/sub
// on one channel (default "live-events"), so instances share nothing else.
//
//	b, err := bus.NewRedis(ctx, rdb, "live-events", func(m bus.Message) { ... })
//	b.Publish(ctx, bus.Message{Site: "abc", Data: []byte(`{"type":"arrival"}`)})
//
// Delivery is at most once: a message published while an instance is
// reconnecting to Redis does not reach that instance. Live messages are
// ephemeral, so that is the right trade; counts are re-read and pushed again.
package bus

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Message is one live message for the subscribers of a site. Data is the
// JSON that dashboards receive; handlers must not modify it.
type Message struct {
	Site string
	Data []byte
}

// Handler receives every message. It is called from one goroutine at a time
// and must not block: the bus stalls until it returns.
type Handler func(Message)

// Bus publishes messages to every instance's handler.
type Bus interface {
	Publish(ctx context.Context, msgs ...Message) error
	Close() error
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("bus: closed")

// Local delivers messages to its handler in the publishing goroutine.
type Local struct {
	mu     sync.Mutex
	h      Handler
	closed bool
}

// NewLocal returns an in-process bus.
func NewLocal(h Handler) *Local {
	return &Local{h: h}
}

// Publish implements Bus.
func (l *Local) Publish(_ context.Context, msgs ...Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for _, m := range msgs {
		l.h(m)
	}
	return nil
}

// Close implements Bus.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

// Redis is a bus on Redis pub/sub. A payload is the site id, a newline and
// the message data.
type Redis struct {
	rdb     *redis.Client
	channel string
	ps      *redis.PubSub
	done    chan struct{}
}

// NewRedis subscribes to channel and calls h for every message until Close.
// It returns once the subscription is confirmed, so nothing published after
// it returns is missed.
func NewRedis(ctx context.Context, rdb *redis.Client, channel string, h Handler) (*Redis, error) {
	ps := rdb.Subscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, err
	}
	b := &Redis{rdb: rdb, channel: channel, ps: ps, done: make(chan struct{})}
	ch := ps.Channel(redis.WithChannelSize(4096))
	go func() {
		defer close(b.done)
		for m := range ch {
			site, data, ok := strings.Cut(m.Payload, "\n")
			if ok && site != "" {
				h(Message{Site: site, Data: []byte(data)})
			}
		}
	}()
	return b, nil
}

// Publish implements Bus; one round trip for all msgs.
func (b *Redis) Publish(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			if m.Site == "" || strings.Contains(m.Site, "\n") {
				continue // cannot be framed; site ids never contain one
			}
			p.Publish(ctx, b.channel, m.Site+"\n"+string(m.Data))
		}
		return nil
	})
	return err
}

// Close unsubscribes and waits for the handler to return.
func (b *Redis) Close() error {
	err := b.ps.Close()
	<-b.done
	return err
}
