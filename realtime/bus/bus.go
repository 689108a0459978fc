// Package bus carries live messages to every instance of Pocketlytics: each
// instance hands the messages of the hits it accepted to the bus, and every
// instance's handler receives every message, whichever instance published it.
//
// Local is the in-process bus of a single instance; Redis uses Redis pub/sub
// on one channel (default "live-events"), so instances share nothing else.
//
//	b := bus.NewRedis(rdb, "live-events", func(m bus.Message) { ... })
//	b.Publish(ctx, bus.Message{Site: "abc", Data: []byte(`{"type":"arrival"}`)})
//
// Delivery is at most once: a message published while an instance is
// reconnecting to Redis does not reach that instance, and Publish fails
// while Redis is down. Live messages are ephemeral, so that is the right
// trade; counts are re-read and pushed again.
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
	cancel  context.CancelFunc
	ready   chan struct{}
	done    chan struct{}
}

// NewRedis subscribes to channel and calls h for every message until Close.
//
// It does no I/O itself and cannot fail: the subscription is made in the
// background, so an unreachable Redis never holds up the app's start. While
// Redis is down go-redis keeps reconnecting (a dial every 100ms at most) and
// subscribes again once it answers. Ready is closed when the subscription
// first takes effect: nothing published after that is missed, except while
// the connection is lost.
func NewRedis(rdb *redis.Client, channel string, h Handler) *Redis {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Redis{
		rdb:     rdb,
		channel: channel,
		ps:      rdb.Subscribe(ctx), // no channel yet: no I/O
		cancel:  cancel,
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.run(ctx, h)
	return b
}

func (b *Redis) run(ctx context.Context, h Handler) {
	defer close(b.done)
	// This records the channel even when it fails; the receive loop then
	// keeps reconnecting, subscribing to it whenever it connects.
	_ = b.ps.Subscribe(ctx, b.channel)
	for m := range b.ps.ChannelWithSubscriptions(redis.WithChannelSize(4096)) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				select {
				case <-b.ready:
				default:
					close(b.ready)
				}
			}
		case *redis.Message:
			site, data, ok := strings.Cut(m.Payload, "\n")
			if ok && site != "" {
				h(Message{Site: site, Data: []byte(data)})
			}
		}
	}
}

// Ready is closed once the subscription took effect for the first time.
func (b *Redis) Ready() <-chan struct{} { return b.ready }

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
	b.cancel() // ends a subscription attempt in progress
	err := b.ps.Close()
	<-b.done
	return err
}
