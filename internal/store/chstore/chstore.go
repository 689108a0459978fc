// Package chstore is the ClickHouse analytics store: it writes the flusher's
// batches into the events table over the native protocol and owns that
// table's schema (see package schema).
//
// It works with ClickHouse 18.16 and current releases. Server features are
// detected at start and used only where present: LowCardinality columns, TTL
// retention and server-side insert deduplication on new servers; plain
// String columns, partition dropping and a check for already stored event
// ids on 18.16.
//
// Usage:
//
//	s, err := chstore.Open(ctx, "clickhouse://default:@127.0.0.1:9000/analytics", chstore.Options{RetentionDays: 400})
//	if err != nil { ... }
//	defer s.Close()
//	err = s.Insert(ctx, token, events)
package chstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/store/chstore/schema"
)

// Options tune the store. The zero value is usable.
type Options struct {
	// RetentionDays drops events older than this many days; 0 keeps them
	// forever. Whole months past the cutoff are dropped as partitions every
	// RetentionInterval; servers with TTL support also get a table TTL that
	// removes single rows past the cutoff during merges.
	RetentionDays int

	// RetentionInterval is how often old partitions are dropped
	// (default 1h). Used only when RetentionDays > 0.
	RetentionInterval time.Duration

	// Logger receives background retention errors (default slog.Default()).
	Logger *slog.Logger

	// Cluster names a cluster of the server's remote_servers: the tables are
	// then created on each of its servers and used through Distributed
	// tables (see cluster.go). Retention is not supported on a cluster yet,
	// and the queries read the rows, not the rollups (see rollup.go).
	Cluster string
}

// Store is the ClickHouse analytics store. It is safe for concurrent use.
type Store struct {
	conn     driver.Conn
	database string
	features schema.Features
	opts     Options

	// stop ends the retention loop, which closes done when it returns.
	stop context.CancelFunc
	done chan struct{}

	// visitsMu serializes visit updates (see updateVisits); stopBackfill
	// ends the visits backfill, which closes backfilled when it returns.
	visitsMu     sync.Mutex
	stopBackfill context.CancelFunc
	backfilled   chan struct{}

	// rollups is set once the rollups hold every stored visit (see
	// rollup.go); off on a cluster, whose servers each keep their own.
	rollups atomic.Bool
}

// Open connects to the ClickHouse server of dsn over the native protocol,
// creates the DSN's database if it is missing and applies the migrations.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	chOpts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("chstore: parse dsn: %w", err)
	}
	if chOpts.Protocol != clickhouse.Native {
		return nil, errors.New("chstore: only the native protocol is supported (clickhouse:// DSN, port 9000)")
	}
	database := chOpts.Auth.Database
	if database == "" {
		database = "default"
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}

	if opts.Cluster != "" {
		if opts.RetentionDays > 0 {
			return nil, errors.New("chstore: retention is not supported on a cluster yet")
		}
		replicas, err := createCluster(ctx, chOpts, database, opts.Cluster)
		if err != nil {
			return nil, err
		}
		chOpts.Settings = withClusterSettings(chOpts.Settings, replicas)
	} else if err := ensureDatabase(ctx, dsn, database); err != nil {
		return nil, err
	}

	chOpts.Auth.Database = database
	conn, err := clickhouse.Open(chOpts)
	if err != nil {
		return nil, fmt.Errorf("chstore: %w", classify("connect", err))
	}
	if opts.Cluster != "" {
		conn = clusterConn{conn}
	}
	s := &Store{
		conn:     conn,
		database: database,
		opts:     opts,
	}
	if err := s.init(ctx); err != nil {
		conn.Close()
		return nil, err
	}

	var pending []time.Time
	if opts.Cluster == "" {
		if pending, err = s.pendingRollups(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("chstore: %w", err)
		}
		s.rollups.Store(len(pending) == 0)
	}
	var bctx context.Context
	bctx, s.stopBackfill = context.WithCancel(context.Background())
	s.backfilled = make(chan struct{})
	go func() {
		defer close(s.backfilled)
		s.backfillVisits(bctx, opts.Logger)
		s.backfillRollups(bctx, pending, opts.Logger)
	}()

	if opts.RetentionDays > 0 {
		var loopCtx context.Context
		loopCtx, s.stop = context.WithCancel(context.Background())
		s.done = make(chan struct{})
		go s.retentionLoop(loopCtx)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("chstore: %w", classify("ping", err))
	}
	f, err := schema.Detect(ctx, s.conn)
	if err != nil {
		return fmt.Errorf("chstore: %w", err)
	}
	s.features = f
	if s.opts.Cluster != "" {
		return nil // createCluster applied the schema
	}
	if _, err := schema.Apply(ctx, s.conn, f); err != nil {
		return fmt.Errorf("chstore: %w", err)
	}
	if err := s.applyTTL(ctx); err != nil {
		return fmt.Errorf("chstore: %w", err)
	}
	return nil
}

// ensureDatabase creates the database through a connection to "default",
// since a connection to a missing database fails its handshake.
func ensureDatabase(ctx context.Context, dsn, database string) error {
	if database == "default" {
		return nil
	}
	chOpts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("chstore: parse dsn: %w", err)
	}
	chOpts.Auth.Database = "default"
	chOpts.MaxOpenConns = 1
	conn, err := clickhouse.Open(chOpts)
	if err != nil {
		return fmt.Errorf("chstore: %w", classify("connect", err))
	}
	defer conn.Close()
	if err := schema.EnsureDatabase(ctx, conn, database); err != nil {
		return fmt.Errorf("chstore: %w", classify("create database", err))
	}
	return nil
}

// Features returns what the server supports, as detected by Open.
func (s *Store) Features() schema.Features {
	return s.features
}

// Ping reports whether the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return classify("ping", err)
	}
	return nil
}

// Kind names the implementation for health output.
func (s *Store) Kind() string {
	return "clickhouse"
}

// Close stops the backfill and the retention loop and closes the connections.
func (s *Store) Close() error {
	if s.stopBackfill != nil {
		s.stopBackfill()
		<-s.backfilled
		s.stopBackfill = nil
	}
	if s.stop != nil {
		s.stop()
		<-s.done
		s.stop = nil
	}
	return s.conn.Close()
}
