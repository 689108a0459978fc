package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/flush"
	"github.com/pocketlytics/pocketlytics/internal/queue"
	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/queue/spool"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/chstore"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlitestore"
)

// spoolTimeout is the longest a hit waits for Redis before it is spooled to
// the local queue instead.
const spoolTimeout = 500 * time.Millisecond

// queueStore is the part of the plugin from the queue to the store: the
// queue, the analytics store and the flusher between them. It exists only
// while serving. It opens when the server
// starts (not for CLI commands such as `superuser`, which must not take the
// queue's lock) and drains when the app terminates.
//
// Without Redis the local queue is both sides. With Redis, hits go through
// the spool (Redis, or the local queue while Redis is unreachable) and the
// flusher reads the Redis stream through its consumer group.
type queueStore struct {
	app core.App
	cfg Config
	rdb *redis.Client // nil without Config.RedisURL

	local    *localq.Queue
	redisq   *redisq.Queue // nil without Redis
	spool    *spool.Spool  // nil without Redis
	producer queue.Producer
	consumer queue.Queue

	mu      sync.RWMutex
	store   store.Store // nil until reached
	flusher *flush.Flusher

	stop context.CancelFunc
	done chan struct{}
}

func (d *queueStore) open() error {
	log := d.app.Logger()

	dir := d.cfg.QueueDir
	if dir == "" {
		dir = filepath.Join(d.app.DataDir(), config.QueueDir)
	}
	local, err := localq.Open(dir, localq.Options{Fsync: d.cfg.QueueFsync, Logger: log})
	if err != nil {
		return fmt.Errorf("open local queue: %w", err)
	}
	localq.RegisterBackup(d.app, local)
	d.local, d.producer, d.consumer = local, local, local

	if d.rdb != nil {
		node, err := nodeID(d.app.DataDir(), d.cfg)
		if err != nil {
			return err
		}
		p := d.cfg.RedisPrefix
		d.redisq, err = redisq.New(d.rdb, redisq.Options{
			Stream:        p + "events",
			DeadStream:    p + "events:dead",
			Group:         "flushers",
			Consumer:      node,
			ClaimIdle:     d.cfg.ClaimIdle,
			MaxDeliveries: d.cfg.MaxDeliveries,
		})
		if err != nil {
			return fmt.Errorf("open redis queue: %w", err)
		}
		d.spool = spool.New(d.redisq, local, spool.Options{Timeout: spoolTimeout, Logger: log})
		d.producer, d.consumer = d.spool, d.redisq
	}

	ctx, cancel := context.WithCancel(context.Background())
	d.stop, d.done = cancel, make(chan struct{})
	go d.run(ctx)
	return nil
}

// run reaches the store (retrying while it is down, so a ClickHouse outage at
// start only delays flushing) and then flushes until ctx ends.
func (d *queueStore) run(ctx context.Context) {
	defer close(d.done)
	log := d.app.Logger()

	var s store.Store
	for attempt := 0; ; attempt++ {
		var err error
		if s, err = d.openStore(ctx); err == nil {
			break
		}
		log.Error("analytics store unreachable, retrying", slog.String("kind", d.storeKind()), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
		}
	}

	f := flush.New(d.consumer, s, flush.Options{
		BatchSize:     d.cfg.FlushBatch,
		Interval:      d.cfg.FlushInterval,
		MaxDeliveries: d.cfg.MaxDeliveries,
		Logger:        log,
	})

	d.mu.Lock()
	d.store, d.flusher = s, f
	d.mu.Unlock()

	if err := f.Run(ctx); err != nil {
		log.Warn("flusher stopped with events left in the queue", slog.String("error", err.Error()))
	}
}

func (d *queueStore) openStore(ctx context.Context) (store.Store, error) {
	if d.cfg.ClickHouseURL != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return chstore.Open(ctx, d.cfg.ClickHouseURL, chstore.Options{
			RetentionDays: d.cfg.RetentionDays,
			Logger:        d.app.Logger(),
			Cluster:       d.cfg.ClickHouseCluster,
		})
	}
	s, err := sqlitestore.Open(filepath.Join(d.app.DataDir(), "analytics.db"))
	if err != nil {
		return nil, err
	}
	sqlitestore.RegisterBackup(d.app, s)
	return s, nil
}

func (d *queueStore) storeKind() string {
	if d.cfg.ClickHouseURL != "" {
		return "clickhouse"
	}
	return "sqlite"
}

// close stops the flusher, which stores what it holds, then closes the
// queues (spool, Redis, local) and last the store.
func (d *queueStore) close() {
	if d.stop == nil {
		return
	}
	d.stop()
	<-d.done
	if d.spool != nil {
		_ = d.spool.Close()
	}
	if d.redisq != nil {
		_ = d.redisq.Close()
	}
	_ = d.local.Close()
	if s := d.currentStore(); s != nil {
		_ = s.Close()
	}
}

// maintain runs from the minute cron: retention of the embedded store
// (ClickHouse runs its own) and trimming the acknowledged part of the stream.
func (d *queueStore) maintain() {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	log := d.app.Logger()

	if d.redisq != nil {
		if _, err := d.redisq.Trim(ctx); err != nil {
			log.Warn("trim redis stream", slog.String("error", err.Error()))
		}
	}
	if s, ok := d.currentStore().(*sqlitestore.Store); ok && d.cfg.RetentionDays > 0 {
		cutoff := time.Now().AddDate(0, 0, -d.cfg.RetentionDays)
		if _, err := s.DeleteBefore(ctx, cutoff); err != nil {
			log.Warn("retention", slog.String("error", err.Error()))
		}
	}
}

func (d *queueStore) currentStore() store.Store {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.store
}

// Enqueue is the ingest route's queue.Producer.
func (d *queueStore) Enqueue(ctx context.Context, events ...event.Event) error {
	return d.producer.Enqueue(ctx, events...)
}

// Stats reports the flusher's queue, for health.
func (d *queueStore) Stats(ctx context.Context) (queue.Stats, error) {
	return d.consumer.Stats(ctx)
}

// Ping reports whether the analytics store is reachable, for health.
func (d *queueStore) Ping(ctx context.Context) error {
	s := d.currentStore()
	if s == nil {
		return store.ErrUnavailable
	}
	return s.Ping(ctx)
}

// Kind names the analytics store, for health.
func (d *queueStore) Kind() string { return d.storeKind() }

// LastFlush is when a batch was last stored; zero before the first.
func (d *queueStore) LastFlush() time.Time {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.flusher == nil {
		return time.Time{}
	}
	return d.flusher.LastFlush()
}

// redisPinger reports whether Redis answers, for health.
type redisPinger struct{ c *redis.Client }

func (p redisPinger) Ping(ctx context.Context) error { return p.c.Ping(ctx).Err() }

// spoolStats reports the Redis-outage spool, which exists once serving.
type spoolStats struct{ d *queueStore }

func (s spoolStats) Stats(ctx context.Context) (spool.Stats, error) {
	if s.d.spool == nil {
		return spool.Stats{}, nil
	}
	return s.d.spool.Stats(ctx)
}

// Overview, Timeseries, Breakdown and Funnel make queueStore the analytics API's
// store.Querier; they answer store.ErrUnavailable until the store is reached
// (ClickHouse down at start); ingest is not affected.

func (d *queueStore) Overview(ctx context.Context, q store.Query) (store.Overview, error) {
	s := d.currentStore()
	if s == nil {
		return store.Overview{}, store.ErrUnavailable
	}
	return s.Overview(ctx, q)
}

func (d *queueStore) Timeseries(ctx context.Context, q store.Query, interval store.Interval) ([]store.Point, error) {
	s := d.currentStore()
	if s == nil {
		return nil, store.ErrUnavailable
	}
	return s.Timeseries(ctx, q, interval)
}

func (d *queueStore) Breakdown(ctx context.Context, q store.Query, dim store.Dimension, limit, offset int) (store.Breakdown, error) {
	s := d.currentStore()
	if s == nil {
		return store.Breakdown{}, store.ErrUnavailable
	}
	return s.Breakdown(ctx, q, dim, limit, offset)
}

func (d *queueStore) Funnel(ctx context.Context, q store.Query, steps []store.Goal) ([]store.FunnelStep, error) {
	s := d.currentStore()
	if s == nil {
		return nil, store.ErrUnavailable
	}
	return s.Funnel(ctx, q, steps)
}
