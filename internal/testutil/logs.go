package testutil

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/pocketbase/pocketbase/tools/logger"
)

// Logs records what a logger wrote, after PocketBase's log handler and the
// JSON encoding of its log store (the `_logs` table behind the admin UI's
// Logs page). An entry whose attributes that store would refuse (a
// time.Duration, a value its encoder has no representation for) fails the
// test: PocketBase drops such an entry, so the operator would never see it.
type Logs struct {
	t  testing.TB
	mu sync.Mutex
	// Entries are the stored entries, oldest first.
	entries []*logger.Log
}

// NewLogs returns a logger that stores through PocketBase's log handler,
// at every level from Debug, and the record of what it stored.
func NewLogs(t testing.TB) (*slog.Logger, *Logs) {
	l := &Logs{t: t}
	h := logger.NewBatchHandler(logger.BatchOptions{
		Level:     slog.LevelDebug,
		BatchSize: 1, // each entry is written at once
		WriteFunc: l.write,
	})
	return slog.New(h), l
}

func (l *Logs) write(_ context.Context, logs []*logger.Log) error {
	for _, e := range logs {
		// The store's own encoding (core.Log.Data is this type).
		if _, err := e.Data.MarshalJSON(); err != nil {
			l.t.Errorf("log entry %q cannot be stored by PocketBase: %v", e.Message, err)
		}
	}
	l.mu.Lock()
	l.entries = append(l.entries, logs...)
	l.mu.Unlock()
	return nil
}

// Find returns the stored entries with message msg.
func (l *Logs) Find(msg string) []*logger.Log {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*logger.Log
	for _, e := range l.entries {
		if e.Message == msg {
			out = append(out, e)
		}
	}
	return out
}
