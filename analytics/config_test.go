package analytics

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}

	t.Run("zero config gets the defaults", func(t *testing.T) {
		c, err := configFromEnv(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.RedisURL != "" || c.ClickHouseURL != "" || c.TrackLocalhost || len(c.GeoHeaders) != 0 {
			t.Fatalf("optional parts must be off by default: %+v", c)
		}
		c, err = c.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if c.FlushBatch != 10000 || c.FlushInterval != time.Second || c.RateLimit != 20 ||
			c.LiveWindow != 5*time.Minute || c.ClaimIdle != time.Minute || c.MaxDeliveries != 5 ||
			c.RedisSessionTimeout != 50*time.Millisecond || c.RedisPrefix != "pl:" ||
			c.DashboardPath != "/analytics/" || c.MetricsPath != "/api/analytics/metrics" ||
			c.SitesCollection != "sites" || c.SaltsCollection != "salts" {
			t.Fatalf("unexpected defaults: %+v", c)
		}
	})

	t.Run("values", func(t *testing.T) {
		c, err := configFromEnv(env(map[string]string{
			"REDIS_URL":         "redis://127.0.0.1:6379/0",
			"GEO_HEADERS":       " Cloudflare, vercel ,,",
			"TRACK_LOCALHOST":   "true",
			"FLUSH_INTERVAL":    "250ms",
			"RATE_LIMIT":        "2.5",
			"SITES_COLLECTION":  "analytics_sites",
			"NO_GEOIP_DOWNLOAD": "true",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.RedisURL == "" || !c.TrackLocalhost || c.FlushInterval != 250*time.Millisecond || c.RateLimit != 2.5 ||
			c.SitesCollection != "analytics_sites" || !c.NoGeoIPDownload {
			t.Fatalf("values not read: %+v", c)
		}
		if strings.Join(c.GeoHeaders, ",") != "cloudflare,vercel" {
			t.Fatalf("GeoHeaders = %v", c.GeoHeaders)
		}
	})

	t.Run("errors name every bad variable", func(t *testing.T) {
		_, err := configFromEnv(env(map[string]string{
			"FLUSH_BATCH":     "-1",
			"FLUSH_INTERVAL":  "soon",
			"TRACK_LOCALHOST": "maybe",
			"RATE_LIMIT":      "0",
		}))
		if err == nil {
			t.Fatal("want an error")
		}
		for _, name := range []string{"FLUSH_BATCH", "FLUSH_INTERVAL", "TRACK_LOCALHOST", "RATE_LIMIT"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
		}
	})
}

func TestConfigPaths(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/", true},
		{"/analytics/", true},
		{"/stats/web/", true},
		{"/analytics", false},
		{"analytics/", false},
		{"/api/analytics/", false},
		{"/_/x/", false},
		{"/{x}/", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := Config{DashboardPath: tc.path}.withDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("DashboardPath %q: err = %v, want ok = %v", tc.path, err, tc.ok)
			}
		})
	}
}

func TestCollectorNeedsRedisAndClickHouse(t *testing.T) {
	for name, cfg := range map[string]Config{
		"neither":       {Collector: true},
		"no clickhouse": {Collector: true, RedisURL: "redis://127.0.0.1:6379/0"},
		"no redis":      {Collector: true, ClickHouseURL: "clickhouse://127.0.0.1:9000/a"},
	} {
		if _, err := cfg.withDefaults(); err == nil {
			t.Errorf("%s: a collector was accepted", name)
		}
	}
	ok := Config{Collector: true, RedisURL: "redis://127.0.0.1:6379/0", ClickHouseURL: "clickhouse://127.0.0.1:9000/a"}
	if _, err := ok.withDefaults(); err != nil {
		t.Fatal(err)
	}
}

func TestTrustedProxyHeadersFromEnv(t *testing.T) {
	c, err := configFromEnv(func(k string) string {
		if k == "TRUSTED_PROXY_HEADERS" {
			return " X-Real-IP, ,X-Forwarded-For"
		}
		return ""
	})
	if err != nil || len(c.TrustedProxyHeaders) != 2 || c.TrustedProxyHeaders[0] != "X-Real-IP" || c.TrustedProxyHeaders[1] != "X-Forwarded-For" {
		t.Fatalf("TrustedProxyHeaders = %q, %v", c.TrustedProxyHeaders, err)
	}
}
