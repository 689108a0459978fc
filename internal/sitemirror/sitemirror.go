// Package sitemirror keeps a copy of the sites in Redis, so that collector
// nodes, which have no sites collection of their own, accept the hits of the
// control node's sites.
//
// The control node writes every site to a hash (site id → JSON of
// sitecache.Site) and publishes the id of each change on a channel; a
// collector loads the hash, then applies each change it hears, reloading the
// whole hash after every (re)subscription, so changes made while it was cut
// off are not missed. A collector keeps its last copy while Redis is away
// and saves it to a file, so it also starts during an outage.
//
//	// control node
//	err := sitemirror.Publish(app, rdb, sitemirror.Options{Key: "pl:sites"})
//	// collector
//	sites := sitecache.New()
//	f := sitemirror.Follow(rdb, sites, sitemirror.Options{Key: "pl:sites", File: "pb_data/sites.json"})
//	defer f.Close()
package sitemirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// reloadAll is the message that tells collectors to reload every site.
const reloadAll = "*"

// retryEvery is how often a failed write or load is tried again.
const retryEvery = time.Second

// Options configure both sides of the mirror.
type Options struct {
	// Key is the hash of sites (default "pl:sites"); changes are published
	// on Key + ":changes".
	Key string

	// File is where a collector saves its copy, to start from it while
	// Redis is unreachable (optional).
	File string

	// Logger receives failures, once per outage (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Key == "" {
		o.Key = "pl:sites"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func (o *Options) channel() string { return o.Key + ":changes" }

// encode is a site as stored in the hash.
func encode(s sitecache.Site) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

func decode(v string) (sitecache.Site, error) {
	var s sitecache.Site
	err := json.Unmarshal([]byte(v), &s)
	return s, err
}

// Follower keeps a sitecache.Cache equal to the mirror in Redis.
type Follower struct {
	rdb   *redis.Client
	sites *sitecache.Cache
	opts  Options

	stop   context.CancelFunc
	done   chan struct{}
	loaded chan struct{} // closed after the first load from Redis
}

// Follow fills sites from the mirror and keeps it current until Close. It
// starts from the copy saved in Options.File, if any, so that a collector
// restarted while Redis is down still knows its sites.
func Follow(rdb *redis.Client, sites *sitecache.Cache, opts Options) *Follower {
	opts.setDefaults()
	f := &Follower{rdb: rdb, sites: sites, opts: opts, done: make(chan struct{}), loaded: make(chan struct{})}
	if saved, err := f.readFile(); err == nil {
		sites.Replace(saved)
	} else if !errors.Is(err, os.ErrNotExist) {
		opts.Logger.Warn("sitemirror: the saved copy of the sites is unreadable", slog.String("error", err.Error()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	go f.run(ctx)
	return f
}

// Loaded is closed once the sites were loaded from Redis.
func (f *Follower) Loaded() <-chan struct{} { return f.loaded }

// Close stops following; the cache keeps its last copy.
func (f *Follower) Close() error {
	f.stop()
	<-f.done
	return nil
}

// run subscribes to the changes and applies them. go-redis subscribes again
// after a lost connection and says so with a subscription message: the
// whole hash is reloaded then, as at the start. A load that fails is retried
// every second until one succeeds.
func (f *Follower) run(ctx context.Context) {
	defer close(f.done)
	ps := f.rdb.Subscribe(ctx, f.opts.channel())
	defer ps.Close()

	stale, failing := true, false
	for ctx.Err() == nil {
		if stale {
			if err := f.reload(ctx); err != nil {
				if !failing {
					f.opts.Logger.Warn("sitemirror: cannot load the sites from Redis, keeping the last copy", slog.String("error", err.Error()))
				}
				failing = true
			} else {
				if failing {
					f.opts.Logger.Info("sitemirror: sites loaded from Redis again")
				}
				stale, failing = false, false
			}
		}

		msg, err := ps.ReceiveTimeout(ctx, retryEvery)
		if err != nil {
			var nerr interface{ Timeout() bool }
			if !errors.As(err, &nerr) || !nerr.Timeout() {
				stale = true // the connection broke: changes may be lost
				select {
				case <-ctx.Done():
				case <-time.After(retryEvery):
				}
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				stale = true
			}
		case *redis.Message:
			if m.Payload == reloadAll {
				stale = true
			} else if err := f.refresh(ctx, m.Payload); err != nil {
				stale = true
			}
		}
	}
}

// reload replaces the cache with the whole hash.
func (f *Follower) reload(ctx context.Context) error {
	all, err := f.rdb.HGetAll(ctx, f.opts.Key).Result()
	if err != nil {
		return fmt.Errorf("sitemirror: hgetall: %w", err)
	}
	sites := make(map[string]sitecache.Site, len(all))
	for id, v := range all {
		s, err := decode(v)
		if err != nil {
			f.opts.Logger.Error("sitemirror: a mirrored site does not decode, skipped", slog.String("id", id), slog.String("error", err.Error()))
			continue
		}
		sites[id] = s
	}
	f.sites.Replace(sites)
	f.save()
	select {
	case <-f.loaded:
	default:
		close(f.loaded)
	}
	return nil
}

// refresh reads one site again after a change.
func (f *Follower) refresh(ctx context.Context, id string) error {
	v, err := f.rdb.HGet(ctx, f.opts.Key, id).Result()
	switch {
	case errors.Is(err, redis.Nil):
		f.sites.Delete(id)
	case err != nil:
		return fmt.Errorf("sitemirror: hget: %w", err)
	default:
		s, err := decode(v)
		if err != nil {
			return fmt.Errorf("sitemirror: site %s: %w", id, err)
		}
		f.sites.Put(s)
	}
	f.save()
	return nil
}

// save writes the cache to Options.File (written aside, then renamed).
func (f *Follower) save() {
	if f.opts.File == "" {
		return
	}
	b, err := json.Marshal(f.sites.All())
	if err == nil {
		tmp := f.opts.File + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, f.opts.File)
		}
	}
	if err != nil {
		f.opts.Logger.Warn("sitemirror: cannot save the copy of the sites", slog.String("error", err.Error()))
	}
}

func (f *Follower) readFile() (map[string]sitecache.Site, error) {
	if f.opts.File == "" {
		return nil, os.ErrNotExist
	}
	b, err := os.ReadFile(f.opts.File)
	if err != nil {
		return nil, err
	}
	var sites map[string]sitecache.Site
	return sites, json.Unmarshal(b, &sites)
}
