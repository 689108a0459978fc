package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}

	t.Run("defaults", func(t *testing.T) {
		c, err := parse(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.FlushBatch != 10000 || c.FlushInterval != time.Second || c.RateLimit != 20 ||
			c.LiveWindow != 5*time.Minute || c.ClaimIdle != time.Minute || c.MaxDeliveries != 5 ||
			c.RedisSessionTimeout != 50*time.Millisecond {
			t.Fatalf("unexpected defaults: %+v", c)
		}
		if c.RedisURL != "" || c.ClickHouseURL != "" || c.TrackLocalhost || len(c.GeoHeaders) != 0 {
			t.Fatalf("optional parts must be off by default: %+v", c)
		}
	})

	t.Run("values", func(t *testing.T) {
		c, err := parse(env(map[string]string{
			"REDIS_URL":       "redis://127.0.0.1:6379/0",
			"GEO_HEADERS":     " Cloudflare, vercel ,,",
			"TRACK_LOCALHOST": "true",
			"FLUSH_INTERVAL":  "250ms",
			"RATE_LIMIT":      "2.5",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.RedisURL == "" || !c.TrackLocalhost || c.FlushInterval != 250*time.Millisecond || c.RateLimit != 2.5 {
			t.Fatalf("values not read: %+v", c)
		}
		if strings.Join(c.GeoHeaders, ",") != "cloudflare,vercel" {
			t.Fatalf("GeoHeaders = %v", c.GeoHeaders)
		}
	})

	t.Run("errors name every bad variable", func(t *testing.T) {
		_, err := parse(env(map[string]string{
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
