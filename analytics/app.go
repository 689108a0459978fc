package analytics

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/enrich"
	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/session"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/internal/sitemirror"
	"github.com/pocketlytics/pocketlytics/migrations"
	"github.com/pocketlytics/pocketlytics/realtime"
)

const registeredKey = "pocketlytics.registered"

// MustRegister registers the analytics plugin in app and panics on error.
func MustRegister(app core.App, cfg Config) {
	if err := Register(app, cfg); err != nil {
		panic(err)
	}
}

// Register wires every part of Pocketlytics into app, following the data
// path: sites → enrich → queue → flush → store, and the live layer beside
// it. Nothing runs before the app serves: the queue, store and flusher open
// in OnServe and drain in OnTerminate, so CLI commands (superuser, migrate)
// are not affected. It fails when called twice for one app.
func Register(app core.App, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if app.Store().Has(registeredKey) {
		return errors.New("analytics: already registered in this app")
	}
	app.Store().Set(registeredKey, true)
	migrations.SetNames(app, migrations.Names{
		Sites: cfg.SitesCollection, Salts: cfg.SaltsCollection,
		Shares: cfg.SharesCollection, APIKeys: cfg.APIKeysCollection,
	})
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Id:       "pocketlyticsCollections",
		Priority: -200, // before everything that reads them
		Func: func(e *core.ServeEvent) error {
			if err := checkCollections(e.App, cfg); err != nil {
				return err
			}
			if err := trustProxyHeaders(e.App, cfg.TrustedProxyHeaders); err != nil {
				return err
			}
			return e.Next()
		},
	})

	var rdb *redis.Client
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb = redis.NewClient(opts)
	}

	hooks.RegisterServer(app, hooks.ServerConfig{})
	var sites *sitecache.Cache
	if cfg.Collector {
		sites = followSites(app, cfg, rdb)
	} else {
		if err := hooks.RegisterConversions(app); err != nil {
			return err
		}
		if err := hooks.RegisterSegments(app); err != nil {
			return err
		}
		if err := hooks.RegisterSites(app); err != nil {
			return err
		}
		sites = sitecache.Register(app)
		if rdb != nil {
			sitemirror.Publish(app, rdb, sitemirror.Options{Key: cfg.RedisPrefix + "sites"})
		}
	}

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
	geoDB, geoState := openGeo(app, cfg)
	enrichCfg := enrich.Config{
		Geo:        geoDB,
		GeoHeaders: cfg.GeoHeaders,
		Salts:      ring,
	}
	// Sessions too, so a visit is one session whichever instances its hits
	// reach; each hit falls back to memory when Redis is slow or down.
	var sessions *session.Redis
	if rdb != nil {
		sessions = session.NewRedis(rdb, cfg.RedisPrefix, session.RedisOptions{
			Timeout: cfg.RedisSessionTimeout,
			Logger:  app.Logger,
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

	data := &queueStore{app: app, cfg: cfg, rdb: rdb}
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Id:       "pocketlyticsQueueStore",
		Priority: -100, // before the routes that use it
		Func: func(e *core.ServeEvent) error {
			if err := data.open(); err != nil {
				return err
			}
			geoState.start(e.App, cfg.GeoIPDB)
			return e.Next()
		},
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		data.close()
		geoState.stop()
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
		MetricsPath:  cfg.MetricsPath,
		MetricsToken: cfg.MetricsToken,
		GeoIP:        geoState.String,
	}
	if rdb != nil {
		ops.Redis = redisPinger{rdb}
		ops.Spool = spoolStats{data}
	}

	errs := []error{
		hooks.RegisterCollect(app, hooks.CollectConfig{
			Sites:          sites,
			Enricher:       enricher,
			Queue:          data,
			Live:           live,
			RateLimit:      cfg.RateLimit,
			TrackLocalhost: cfg.TrackLocalhost,
			OnHit:          onHit(app),
		}),
		hooks.RegisterOps(app, ops),
		hooks.RegisterTracker(app),
	}
	// A collector takes hits only: the dashboards, their API and live
	// status are the control node's.
	if !cfg.Collector {
		errs = append(errs,
			hooks.RegisterAnalytics(app, hooks.AnalyticsConfig{
				Store:         data,
				Sites:         sites,
				RetentionDays: cfg.RetentionDays,
			}),
			hooks.RegisterLive(app, hooks.LiveConfig{Live: live}),
			hooks.RegisterShares(app),
			hooks.RegisterAPIKeys(app),
			hooks.RegisterInvitations(app, cfg.DashboardPath),
			// Reports and alerts are sent by the control node's cron only.
			hooks.RegisterReports(app, hooks.ReportsConfig{Store: data, Dashboard: cfg.DashboardPath}),
			hooks.RegisterAlerts(app, hooks.AlertsConfig{Live: live, Dashboard: cfg.DashboardPath}),
			hooks.RegisterDashboard(app, cfg.DashboardPath),
		)
	}
	return errors.Join(errs...)
}

// followSites keeps a collector's sites equal to the control node's mirror
// in Redis, starting from the copy saved in pb_data. Serving waits a moment
// for the first load, so the first hits are not refused as unknown sites.
func followSites(app core.App, cfg Config, rdb *redis.Client) *sitecache.Cache {
	sites := sitecache.New()
	var follower *sitemirror.Follower
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Id:       "pocketlyticsSiteMirror",
		Priority: -100, // before the routes that use it
		Func: func(e *core.ServeEvent) error {
			follower = sitemirror.Follow(rdb, sites, sitemirror.Options{
				Key:    cfg.RedisPrefix + "sites",
				File:   filepath.Join(e.App.DataDir(), config.SitesMirrorFile),
				Logger: e.App.Logger(),
			})
			select {
			case <-follower.Loaded():
			case <-time.After(siteMirrorWait):
				e.App.Logger().Warn("analytics: serving before the sites were loaded from Redis, with the copy saved in pb_data",
					slog.Int("sites", len(sites.All())))
			}
			return e.Next()
		},
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		if follower != nil {
			_ = follower.Close()
		}
		return e.Next()
	})
	return sites
}

// siteMirrorWait is how long a collector waits for its first copy of the
// sites before it serves.
const siteMirrorWait = 3 * time.Second

// trustProxyHeaders writes the configured headers into PocketBase's trusted
// proxy settings, where e.RealIP() reads the client address from.
func trustProxyHeaders(app core.App, headers []string) error {
	if len(headers) == 0 {
		return nil
	}
	s := app.Settings()
	if slices.Equal(s.TrustedProxy.Headers, headers) {
		return nil
	}
	s.TrustedProxy.Headers = headers
	if err := app.Save(s); err != nil {
		return fmt.Errorf("analytics: save the trusted proxy headers: %w", err)
	}
	return nil
}

// checkCollections runs once the migrations have: the plugin's collections
// exist (found by their fixed ids) under the configured names.
func checkCollections(app core.App, cfg Config) error {
	for _, c := range []struct{ id, name, setting string }{
		{migrations.SitesCollectionId, cfg.SitesCollection, "SitesCollection"},
		{migrations.SaltsCollectionId, cfg.SaltsCollection, "SaltsCollection"},
		{migrations.SharesCollectionId, cfg.SharesCollection, "SharesCollection"},
		{migrations.APIKeysCollectionId, cfg.APIKeysCollection, "APIKeysCollection"},
	} {
		col, err := app.FindCachedCollectionByNameOrId(c.id)
		if err != nil {
			return fmt.Errorf("analytics: the collection with id %q is missing (was it deleted, or created by a version before ids were fixed?); "+
				"`migrate down` and up again recreates it", c.id)
		}
		if col.Name != c.name {
			app.Logger().Warn("analytics: a collection's name differs from its setting; rename it in the admin UI to match",
				"id", c.id, "name", col.Name, "setting", c.setting, "want", c.name)
		}
	}
	return nil
}
