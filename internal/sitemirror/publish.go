package sitemirror

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// writeTimeout bounds one write of the mirror.
const writeTimeout = 5 * time.Second

// Publish keeps the mirror of app's sites collection in Redis: the whole
// collection once the app serves, then each site after a committed change.
// The writes run in the background, one at a time and in the order of the
// changes, each reading the site's committed row; a write that fails (Redis
// away) is followed by a whole new copy once Redis answers, so collectors
// never keep a change missed.
//
// Options.Logger defaults to the app's logger; Options.File is not used.
func Publish(app core.App, rdb *redis.Client, opts Options) {
	p := &publisher{app: app, rdb: rdb, opts: opts, changes: make(chan string, 1024)}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		if p.opts.Logger == nil {
			p.opts.Logger = e.App.Logger()
		}
		p.opts.setDefaults()
		go func() {
			defer close(done)
			p.run(ctx)
		}()
		return e.Next()
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		cancel()
		select {
		case <-done:
		case <-time.After(writeTimeout):
		}
		return e.Next()
	})

	changed := func(e *core.RecordEvent) error {
		select {
		case p.changes <- e.Record.Id:
		default:
			p.overflow.Store(true) // the worker catches up with a whole copy
		}
		return e.Next()
	}
	app.OnRecordAfterCreateSuccess(sitecache.Collection).BindFunc(changed)
	app.OnRecordAfterUpdateSuccess(sitecache.Collection).BindFunc(changed)
	app.OnRecordAfterDeleteSuccess(sitecache.Collection).BindFunc(changed)
}

type publisher struct {
	app     core.App
	rdb     *redis.Client
	opts    Options
	changes chan string

	overflow atomic.Bool
}

func (p *publisher) run(ctx context.Context) {
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	whole, failing := true, false // the first write is a whole copy
	note := func(err error) {
		switch {
		case err != nil && !failing:
			p.opts.Logger.Warn("sitemirror: cannot write the sites to Redis; collectors keep their last copy until it can", slog.String("error", err.Error()))
			failing, whole = true, true
		case err != nil:
			whole = true
		case failing:
			p.opts.Logger.Info("sitemirror: the sites are mirrored in Redis again")
			failing = false
		}
	}
	for {
		if p.overflow.Swap(false) {
			whole = true
		}
		if whole {
			whole = false
			note(p.writeAll(ctx))
		}
		select {
		case <-ctx.Done():
			return
		case id := <-p.changes:
			if !whole {
				note(p.writeOne(ctx, id))
			}
		case <-tick.C:
		}
	}
}

// writeAll replaces the hash with every site and tells collectors to reload.
func (p *publisher) writeAll(ctx context.Context) error {
	records, err := p.app.FindAllRecords(sitecache.Collection)
	if err != nil {
		return fmt.Errorf("sitemirror: load sites: %w", err)
	}
	fields := make([]any, 0, 2*len(records))
	for _, r := range records {
		v, err := encode(sitecache.FromRecord(r))
		if err != nil {
			return err
		}
		fields = append(fields, r.Id, v)
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	_, err = p.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, p.opts.Key)
		if len(fields) > 0 {
			pipe.HSet(ctx, p.opts.Key, fields...)
		}
		pipe.Publish(ctx, p.opts.channel(), reloadAll)
		return nil
	})
	return err
}

// writeOne writes one site's committed state, or its removal, and
// publishes its id.
func (p *publisher) writeOne(ctx context.Context, id string) error {
	r, err := p.app.FindRecordById(sitecache.Collection, id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sitemirror: load site %s: %w", id, err)
	}
	var v string
	if r != nil {
		if v, err = encode(sitecache.FromRecord(r)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	_, err = p.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		if r == nil {
			pipe.HDel(ctx, p.opts.Key, id)
		} else {
			pipe.HSet(ctx, p.opts.Key, id, v)
		}
		pipe.Publish(ctx, p.opts.channel(), id)
		return nil
	})
	return err
}
