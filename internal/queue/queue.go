// Package queue defines the durable hand-off between the ingest route and the
// flusher. A hit is acknowledged to the browser only after Enqueue returned
// nil, so an implementation must not return before the events survive a
// SIGKILL of the process.
//
// Implementations: localq (an append-only segment log on disk, the embedded
// default and the spool used while Redis is unreachable) and redisq (Redis
// Streams with a consumer group).
package queue

import (
	"context"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// Message is one queued event as handed to a consumer.
type Message struct {
	// ID identifies the entry inside its queue (a stream id, a log offset).
	ID string

	// Deliveries counts how often the entry was handed out, this time
	// included. A poison entry is recognised by a growing count.
	Deliveries int

	Event event.Event
}

// Stats describe the backlog, for health and metrics.
type Stats struct {
	Length        int64         `json:"length"`        // entries not yet acknowledged
	Pending       int64         `json:"pending"`       // handed out, not yet acknowledged
	OldestPending time.Duration `json:"oldestPending"` // age of the oldest unacknowledged entry
	DeadLetters   int64         `json:"deadLetters"`
}

// Producer is the ingest side.
type Producer interface {
	// Enqueue durably appends the events. Safe for concurrent use;
	// concurrent callers share round trips (group commit). It keeps no
	// reference to events after it returns: callers may reuse the slice.
	Enqueue(ctx context.Context, events ...event.Event) error
}

// Consumer is the flusher side.
type Consumer interface {
	// Read returns up to max messages, waiting at most wait for the first
	// one. It returns an empty slice, not an error, when nothing arrived.
	// A queue that keeps several events in one entry (redisq) returns an
	// entry's messages together: the last entry may take it past max.
	Read(ctx context.Context, max int, wait time.Duration) ([]Message, error)

	// Ack marks messages as stored; they are never handed out again. The
	// messages of one Read are acknowledged together: a queue may
	// acknowledge an entry, all of its events, on any one of them.
	Ack(ctx context.Context, msgs []Message) error
}

// AppendReader is implemented by consumers that can read onto the caller's
// buffer (redisq): a flusher gathering a batch over several reads then needs
// no slice per read.
type AppendReader interface {
	// ReadAppend is Read, appending the messages to dst and returning the
	// extended slice, as append does.
	ReadAppend(ctx context.Context, dst []Message, max int, wait time.Duration) ([]Message, error)
}

// Queue is both sides plus introspection.
type Queue interface {
	Producer
	Consumer
	Stats(ctx context.Context) (Stats, error)
	Close() error
}

// DeadLetterer is implemented by queues that can set a poison entry aside
// (with the error that made it fail) so it stops blocking the rest.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, msgs []Message, cause error) error
}
