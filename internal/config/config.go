// Package config reads Pocketlytics' settings from the environment. Every
// setting is listed here, with its default, and in the README's table.
package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config holds every setting. The zero value of a field means "use the default".
type Config struct {
	// RedisURL enables the Redis queue, live bus and presence, and shares
	// salts and sessions between instances (REDIS_URL).
	RedisURL string
	// RedisPrefix namespaces every Redis key and stream (REDIS_PREFIX,
	// default "pl:"), so several deployments can share one server.
	RedisPrefix string
	// LiveChannel is the Redis pub/sub channel of live events
	// (LIVE_CHANNEL, default "live-events").
	LiveChannel string
	// RedisSessionTimeout is the longest a hit waits for its session in
	// Redis; a slower hit is resolved in the instance's memory
	// (REDIS_SESSION_TIMEOUT, default 50ms).
	RedisSessionTimeout time.Duration
	// ClickHouseURL enables the ClickHouse analytics store (CLICKHOUSE_URL),
	// a clickhouse-go DSN such as clickhouse://default:@127.0.0.1:9000/analytics.
	ClickHouseURL string

	// GeoIPDB is the path of a MaxMind-format city or country database
	// (GEOIP_DB). Empty: the embedded country-level database.
	GeoIPDB string
	// GeoHeaders names the CDNs whose geo headers are trusted
	// (GEO_HEADERS=cloudflare,vercel,cloudfront). Empty: none.
	GeoHeaders []string

	// TrackLocalhost accepts hits from localhost pages (TRACK_LOCALHOST).
	TrackLocalhost bool
	// RateLimit is the sustained hits per second allowed per client IP
	// (RATE_LIMIT, default 20); bursts of twice that pass.
	RateLimit float64

	// QueueDir holds the embedded queue's segment files
	// (QUEUE_DIR, default pb_data/queue).
	QueueDir string
	// QueueFsync makes the embedded queue fsync each group commit
	// (QUEUE_FSYNC, default false: a write survives SIGKILL, not power loss).
	QueueFsync bool

	// FlushBatch is the most events per store insert (FLUSH_BATCH, default
	// 10000). Measured (docs/BENCHMARKS.md): ClickHouse drains a backlog no
	// faster with 100000, and the flusher then holds four times the memory.
	FlushBatch int
	// FlushInterval is the longest an event waits in a partial batch
	// (FLUSH_INTERVAL, default 1s).
	FlushInterval time.Duration
	// ClaimIdle is how long a Redis stream entry may stay pending with a
	// dead consumer before another claims it (CLAIM_IDLE, default 1m).
	ClaimIdle time.Duration
	// MaxDeliveries sends an entry to the dead-letter stream after this many
	// failed deliveries (MAX_DELIVERIES, default 5).
	MaxDeliveries int

	// RetentionDays drops analytics events older than this (RETENTION_DAYS,
	// default 0 = keep forever).
	RetentionDays int

	// LiveWindow is the sliding window of the live visitor count
	// (LIVE_WINDOW, default 5m).
	LiveWindow time.Duration

	// MetricsToken lets a scraper read /metrics with
	// "Authorization: Bearer TOKEN" (METRICS_TOKEN). Superusers always can.
	MetricsToken string
}

// FromEnv reads the settings from the environment and applies defaults.
func FromEnv() (Config, error) {
	return parse(os.Getenv)
}

func parse(getenv func(string) string) (Config, error) {
	c := Config{
		RedisURL:      getenv("REDIS_URL"),
		RedisPrefix:   getenv("REDIS_PREFIX"),
		LiveChannel:   getenv("LIVE_CHANNEL"),
		ClickHouseURL: getenv("CLICKHOUSE_URL"),
		GeoIPDB:       getenv("GEOIP_DB"),
		QueueDir:      getenv("QUEUE_DIR"),
		MetricsToken:  getenv("METRICS_TOKEN"),
	}
	for _, h := range strings.Split(getenv("GEO_HEADERS"), ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			c.GeoHeaders = append(c.GeoHeaders, h)
		}
	}

	if c.RedisPrefix == "" {
		c.RedisPrefix = "pl:"
	}
	if c.LiveChannel == "" {
		c.LiveChannel = "live-events"
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
	intVar := func(name string, dst *int, def int) {
		*dst = def
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Sprintf("%s: want a non-negative integer, got %q", name, v))
			}
			*dst = n
		}
	}
	durVar := func(name string, dst *time.Duration, def time.Duration) {
		*dst = def
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Sprintf("%s: want a positive duration such as 1s, got %q", name, v))
			}
			*dst = d
		}
	}

	boolVar("TRACK_LOCALHOST", &c.TrackLocalhost)
	boolVar("QUEUE_FSYNC", &c.QueueFsync)
	intVar("FLUSH_BATCH", &c.FlushBatch, 10000)
	intVar("MAX_DELIVERIES", &c.MaxDeliveries, 5)
	intVar("RETENTION_DAYS", &c.RetentionDays, 0)
	durVar("FLUSH_INTERVAL", &c.FlushInterval, time.Second)
	durVar("CLAIM_IDLE", &c.ClaimIdle, time.Minute)
	durVar("LIVE_WINDOW", &c.LiveWindow, 5*time.Minute)
	durVar("REDIS_SESSION_TIMEOUT", &c.RedisSessionTimeout, 50*time.Millisecond)

	c.RateLimit = 20
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
