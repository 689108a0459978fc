package analytics

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// Config defines the config options of the analytics plugin. The zero value
// runs on the embedded defaults: SQLite store, local queue, in-process live
// bus, dashboard at /analytics/. Each field's environment variable is the one
// ConfigFromEnv reads.
type Config struct {
	// Collector makes this node a collector: it takes hits (/api/collect,
	// /t.js) and flushes them, learning the sites from the control node's
	// mirror in Redis, and serves no dashboard. It needs RedisURL and
	// ClickHouseURL. The standalone binary sets it for `pocketlytics collect`.
	Collector bool

	// DashboardPath is where the dashboard is served, ending in "/"
	// (default "/analytics/"; the standalone binary serves it at "/").
	DashboardPath string

	// MetricsPath is the Prometheus endpoint (default "/api/analytics/metrics";
	// the standalone binary serves it at "/metrics").
	MetricsPath string

	// SitesCollection and SaltsCollection name the plugin's collections
	// (SITES_COLLECTION, default "sites"; SALTS_COLLECTION, default "salts").
	// Choose them before the first start: the migration that creates a
	// collection runs once.
	SitesCollection string
	SaltsCollection string

	// SharesCollection and APIKeysCollection name the collections of share
	// links and API keys (SHARES_COLLECTION, default "shares";
	// API_KEYS_COLLECTION, default "api_keys").
	SharesCollection  string
	APIKeysCollection string

	// RedisURL enables the Redis queue, live bus and presence, and shares
	// salts and sessions between instances (REDIS_URL), e.g.
	// "redis://127.0.0.1:6379/0". Empty: everything stays in the process.
	RedisURL string

	// RedisPrefix namespaces every Redis key and stream (REDIS_PREFIX,
	// default "pl:"), so several deployments can share one server.
	RedisPrefix string

	// RedisSessionTimeout is the longest a hit waits for its session in
	// Redis before it is resolved in the instance's memory
	// (REDIS_SESSION_TIMEOUT, default 50ms).
	RedisSessionTimeout time.Duration

	// LiveChannel is the Redis pub/sub channel of live messages
	// (LIVE_CHANNEL, default "live-events").
	LiveChannel string

	// ClickHouseURL enables the ClickHouse analytics store (CLICKHOUSE_URL),
	// e.g. "clickhouse://default:@127.0.0.1:9000/analytics". Empty: SQLite
	// in pb_data/analytics.db.
	ClickHouseURL string

	// ClickHouseCluster names a cluster of the ClickHouse server's
	// remote_servers (CLICKHOUSE_CLUSTER): the tables are created on each of
	// its servers and read and written through Distributed tables, see
	// docs/SCALING.md. Empty: one server.
	ClickHouseCluster string

	// GeoIPDB is the path of a MaxMind-format city or country database
	// (GEOIP_DB). Empty: the country database embedded in the binary or,
	// without one, downloaded into pb_data/geoip on the first start.
	GeoIPDB string

	// NoGeoIPDownload keeps the plugin from downloading the country database
	// when the binary embeds none and GeoIPDB is empty (NO_GEOIP_DOWNLOAD).
	// Locations then stay unknown.
	NoGeoIPDownload bool

	// GeoHeaders names the CDNs whose location headers are trusted
	// (GEO_HEADERS=cloudflare,vercel,cloudfront). Only list a CDN that every
	// request passes through.
	GeoHeaders []string

	// TrackLocalhost accepts hits from pages on localhost (TRACK_LOCALHOST).
	TrackLocalhost bool

	// TrustedProxyHeaders are written into PocketBase's trusted proxy
	// settings at each start (TRUSTED_PROXY_HEADERS=X-Forwarded-For), so
	// that behind a load balancer the visitor hash and the rate limit see
	// the visitor's address. Empty: the settings are left as they are.
	TrustedProxyHeaders []string

	// RateLimit is the sustained hits per second allowed per client IP
	// (RATE_LIMIT, default 20); bursts of twice that pass.
	RateLimit float64

	// QueueDir holds the embedded queue's segment files
	// (QUEUE_DIR, default pb_data/queue).
	QueueDir string

	// QueueFsync fsyncs each group commit of the embedded queue, so hits
	// survive power loss, not only a crash (QUEUE_FSYNC).
	QueueFsync bool

	// FlushBatch is the most events per store insert (FLUSH_BATCH,
	// default 10000).
	FlushBatch int

	// FlushInterval is the longest an event waits in a partial batch
	// (FLUSH_INTERVAL, default 1s).
	FlushInterval time.Duration

	// ClaimIdle is how long a Redis stream entry may stay pending with a
	// dead consumer before another claims it (CLAIM_IDLE, default 1m).
	ClaimIdle time.Duration

	// NodeID names this node among the Redis queue's consumers (NODE_ID);
	// it must be unique among the running nodes and kept across restarts.
	// Empty: an id made on the first start and kept in pb_data/node_id.
	NodeID string

	// MaxDeliveries sends an entry to the dead letters after this many
	// failed deliveries (MAX_DELIVERIES, default 5).
	MaxDeliveries int

	// RetentionDays deletes analytics events older than this many days
	// (RETENTION_DAYS). Zero keeps them.
	RetentionDays int

	// LiveWindow is the sliding window of the live visitor count
	// (LIVE_WINDOW, default 5m).
	LiveWindow time.Duration

	// MetricsToken lets a scraper read the metrics with
	// "Authorization: Bearer TOKEN" (METRICS_TOKEN). Superusers always can.
	MetricsToken string
}

// withDefaults fills the zero fields from internal/config and checks the
// values that only a program (not ConfigFromEnv) can get wrong.
func (c Config) withDefaults() (Config, error) {
	str := func(dst *string, def string) {
		if *dst == "" {
			*dst = def
		}
	}
	str(&c.DashboardPath, config.DashboardPath)
	str(&c.MetricsPath, config.MetricsPath)
	str(&c.SitesCollection, config.SitesCollection)
	str(&c.SaltsCollection, config.SaltsCollection)
	str(&c.SharesCollection, config.SharesCollection)
	str(&c.APIKeysCollection, config.APIKeysCollection)
	str(&c.RedisPrefix, config.RedisPrefix)
	str(&c.LiveChannel, config.LiveChannel)
	if c.RateLimit <= 0 {
		c.RateLimit = config.RateLimit
	}
	if c.RedisSessionTimeout <= 0 {
		c.RedisSessionTimeout = config.RedisSessionTimeout
	}
	if c.FlushBatch <= 0 {
		c.FlushBatch = config.FlushBatch
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = config.FlushInterval
	}
	if c.ClaimIdle <= 0 {
		c.ClaimIdle = config.ClaimIdle
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = config.MaxDeliveries
	}
	if c.LiveWindow <= 0 {
		c.LiveWindow = config.LiveWindow
	}

	if !strings.HasPrefix(c.DashboardPath, "/") || !strings.HasSuffix(c.DashboardPath, "/") ||
		strings.ContainsAny(c.DashboardPath, "{}") {
		return c, fmt.Errorf("analytics: DashboardPath must start and end with /, got %q", c.DashboardPath)
	}
	if p := strings.TrimSuffix(c.DashboardPath, "/"); p == "/api" || p == "/_" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/_/") {
		return c, fmt.Errorf("analytics: DashboardPath %q is inside PocketBase's /api/ or /_/", c.DashboardPath)
	}
	if c.Collector && (c.RedisURL == "" || c.ClickHouseURL == "") {
		return c, fmt.Errorf("analytics: a collector needs REDIS_URL and CLICKHOUSE_URL: it shares the control node's sites, queue and store")
	}
	if !strings.HasPrefix(c.MetricsPath, "/") {
		return c, fmt.Errorf("analytics: MetricsPath must start with /, got %q", c.MetricsPath)
	}
	return c, nil
}

// ConfigFromEnv reads the settings from the environment variables named in
// Config's fields. Unset variables leave fields at their zero value, which
// Register replaces with the default; a malformed value is an error that
// names every bad variable.
func ConfigFromEnv() (Config, error) {
	return configFromEnv(os.Getenv)
}

func configFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		SitesCollection:   getenv("SITES_COLLECTION"),
		SaltsCollection:   getenv("SALTS_COLLECTION"),
		SharesCollection:  getenv("SHARES_COLLECTION"),
		APIKeysCollection: getenv("API_KEYS_COLLECTION"),
		RedisURL:          getenv("REDIS_URL"),
		RedisPrefix:       getenv("REDIS_PREFIX"),
		LiveChannel:       getenv("LIVE_CHANNEL"),
		ClickHouseURL:     getenv("CLICKHOUSE_URL"),
		ClickHouseCluster: getenv("CLICKHOUSE_CLUSTER"),
		GeoIPDB:           getenv("GEOIP_DB"),
		QueueDir:          getenv("QUEUE_DIR"),
		MetricsToken:      getenv("METRICS_TOKEN"),
		NodeID:            getenv("NODE_ID"),
	}
	for _, h := range strings.Split(getenv("GEO_HEADERS"), ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			c.GeoHeaders = append(c.GeoHeaders, h)
		}
	}

	for _, h := range strings.Split(getenv("TRUSTED_PROXY_HEADERS"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.TrustedProxyHeaders = append(c.TrustedProxyHeaders, h)
		}
	}

	var errs []string
	boolVar := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", name, err))
			}
			*dst = b
		}
	}
	intVar := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Sprintf("%s: want a non-negative integer, got %q", name, v))
			}
			*dst = n
		}
	}
	durVar := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Sprintf("%s: want a positive duration such as 1s, got %q", name, v))
			}
			*dst = d
		}
	}

	boolVar("NO_GEOIP_DOWNLOAD", &c.NoGeoIPDownload)
	boolVar("TRACK_LOCALHOST", &c.TrackLocalhost)
	boolVar("QUEUE_FSYNC", &c.QueueFsync)
	intVar("FLUSH_BATCH", &c.FlushBatch)
	intVar("MAX_DELIVERIES", &c.MaxDeliveries)
	intVar("RETENTION_DAYS", &c.RetentionDays)
	durVar("FLUSH_INTERVAL", &c.FlushInterval)
	durVar("CLAIM_IDLE", &c.ClaimIdle)
	durVar("LIVE_WINDOW", &c.LiveWindow)
	durVar("REDIS_SESSION_TIMEOUT", &c.RedisSessionTimeout)
	if v := getenv("RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			errs = append(errs, fmt.Sprintf("RATE_LIMIT: want a positive number, got %q", v))
		}
		c.RateLimit = f
	}

	if len(errs) > 0 {
		return c, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return c, nil
}
