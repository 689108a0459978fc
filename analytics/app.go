package main

import (
	"context"
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/enrich"
	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/realtime"
)

// register wires every part of Pocketlytics into app, following the data
// path: sites → enrich → queue → flush → store, and the live layer beside it.
func register(app core.App, cfg config.Config) error {
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb = redis.NewClient(opts)
		// go-redis prints every failed dial; the parts that use Redis log an
		// outage once each, so its own lines go to the debug level.
		redis.SetLogger(redisLogger{app})
	}

	if err := hooks.RegisterSites(app); err != nil {
		return err
	}
	sites := sitecache.Register(app)

	// Salts are shared through Redis when instances share a queue, so a
	// visitor gets the same id whichever instance they reach; while Redis is
	// unreachable the instance hashes with its own (and retries).
	var salts salt.Store
	if rdb != nil {
		salts = salt.FallbackStore{
			Primary:  salt.NewRedisStore(rdb, cfg.RedisPrefix),
			Fallback: salt.NewCollectionStore(app),
		}
	}
	ring, err := salt.Register(app, salts)
	if err != nil {
		return err
	}
	enrichCfg := enrich.Config{
		GeoIPDB:    cfg.GeoIPDB,
		GeoHeaders: cfg.GeoHeaders,
		Salts:      ring,
	}
	// Sessions too, so a visit is one session whichever instances its hits
	// reach; each hit falls back to memory when Redis is slow or down.
	var sessions *identity.RedisSessions
	if rdb != nil {
		sessions = identity.NewRedisSessions(rdb, cfg.RedisPrefix, identity.RedisOptions{
			Timeout: cfg.RedisSessionTimeout,
			// A new visit's session is looked up in the script call that
			// queues its first hit: one round trip instead of two. The
			// older queue formats cannot carry it.
			Defer:  cfg.QueueFormat == string(redisq.FormatBatch),
			Logger: app.Logger,
		})
		enrichCfg.Sessions = sessions
	}
	enricher, err := enrich.New(enrichCfg)
	if err != nil {
		return err
	}

	live, err := realtime.Register(app, realtime.Config{
		Redis:     rdb,
		Window:    cfg.LiveWindow,
		Channel:   cfg.LiveChannel,
		KeyPrefix: cfg.RedisPrefix + "live",
	})
	if err != nil {
		return err
	}

	data := &dataPath{app: app, cfg: cfg, rdb: rdb}
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Id:       "pocketlyticsDataPath",
		Priority: -100, // before the routes that use it
		Func: func(e *core.ServeEvent) error {
			if err := data.open(); err != nil {
				return err
			}
			return e.Next()
		},
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		data.close()
		_ = enricher.Close()
		if rdb != nil {
			_ = sessions.Close()
			_ = rdb.Close()
		}
		return e.Next()
	})
	if err := app.Cron().Add("pocketlyticsMaintenance", "* * * * *", data.maintain); err != nil {
		return err
	}

	mode := hooks.ModeEmbedded
	if rdb != nil {
		mode = hooks.ModeRedis
	}
	ops := hooks.OpsConfig{
		Mode:         mode,
		Queue:        data,
		Store:        data,
		LastFlush:    data.LastFlush,
		MetricsToken: cfg.MetricsToken,
	}
	if rdb != nil {
		ops.Redis = redisPinger{rdb}
		ops.Spool = spoolStats{data}
	}

	for _, err := range []error{
		hooks.RegisterCollect(app, hooks.CollectConfig{
			Sites:          sites,
			Enricher:       enricher,
			Queue:          data,
			Live:           live,
			RateLimit:      cfg.RateLimit,
			TrackLocalhost: cfg.TrackLocalhost,
		}),
		hooks.RegisterAnalytics(app, hooks.AnalyticsConfig{
			Store:         data,
			Sites:         sites,
			RetentionDays: cfg.RetentionDays,
		}),
		hooks.RegisterLive(app, hooks.LiveConfig{Live: live}),
		hooks.RegisterOps(app, ops),
		hooks.RegisterTracker(app),
		hooks.RegisterDashboard(app),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// redisLogger sends go-redis' internal messages to the app's debug log.
type redisLogger struct{ app core.App }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.app.Logger().Debug("redis: " + fmt.Sprintf(format, v...))
}
