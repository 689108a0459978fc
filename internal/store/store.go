// Package store defines the analytics store: where the flusher writes batches
// of events and where the analytics API reads them.
//
// Implementations: sqlitestore (the embedded default, its own SQLite file) and
// chstore (ClickHouse over the native protocol).
package store

import (
	"context"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// Writer receives batches from the flusher.
type Writer interface {
	// Insert writes a batch atomically and idempotently: inserting the same
	// batch again (same token, same event ids) must not add rows twice. The
	// token is derived from the batch's queue message ids.
	Insert(ctx context.Context, token string, events []event.Event) error
}

// Store is a writer that can also answer analytics queries.
type Store interface {
	Writer
	Querier

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error

	// Kind names the implementation ("sqlite", "clickhouse") for health output.
	Kind() string

	Close() error
}
