// Package testutil holds helpers shared by integration tests: connections to
// the real Redis and ClickHouse started by scripts/services.sh, unique names
// so parallel test packages never collide, and a runner for the real binary.
//
// Integration helpers skip the test with a message when their service is not
// configured; scripts/test.sh (and so CI) fails the run on any skip.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Unique returns prefix followed by a random suffix, for stream names, keys
// and database names that must not collide across parallel tests.
func Unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// RedisURL returns REDIS_URL or skips the test.
func RedisURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Skip("REDIS_URL not set: run the suite with scripts/test.sh (make test)")
	}
	return url
}

// Redis returns a client for REDIS_URL, closed when the test ends.
// Tests share the server: name every key they create with RedisPrefix.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis ping: %v", err)
	}
	return client
}

// RedisPrefix returns Unique(prefix) for the keys and streams of one test,
// and deletes every key that starts with it when the test ends: the suite
// shares one server, and what each run left there (streams of 100,000
// entries among it) would otherwise add up run after run.
func RedisPrefix(t testing.TB, prefix string) string {
	t.Helper()
	url := RedisURL(t)
	p := Unique(prefix)
	t.Cleanup(func() {
		if err := deleteRedisKeys(url, p); err != nil {
			t.Logf("testutil: deleting the Redis keys %s*: %v", p, err)
		}
	})
	return p
}

// deleteRedisKeys unlinks the keys that start with prefix.
func deleteRedisKeys(url, prefix string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, globEscaper.Replace(prefix)+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			if err := client.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return client.Unlink(ctx, keys...).Err()
	}
	return nil
}

// globEscaper escapes what SCAN's MATCH pattern would read as a wildcard.
var globEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`)

// ClickHouseURL returns CLICKHOUSE_URL or skips the test.
func ClickHouseURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("CLICKHOUSE_URL")
	if url == "" {
		t.Skip("CLICKHOUSE_URL not set: run the suite with scripts/test.sh (make test)")
	}
	return url
}

// ClickHouseDSN returns CLICKHOUSE_URL with its database replaced by a fresh,
// unique one. The database is created by whoever opens it (the store creates
// its database) and dropped when the test ends.
func ClickHouseDSN(t testing.TB) string {
	t.Helper()
	base := ClickHouseURL(t)
	db := Unique("pl_test_")
	dsn := withDatabase(base, db)
	t.Cleanup(func() { dropClickHouseDatabase(t, base, db) })
	return dsn
}

// withDatabase swaps the path of a clickhouse:// DSN for db, keeping the query.
func withDatabase(dsn, db string) string {
	query := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, query = dsn[:i], dsn[i:]
	}
	scheme := ""
	if i := strings.Index(dsn, "://"); i >= 0 {
		scheme, dsn = dsn[:i+3], dsn[i+3:]
	}
	if i := strings.IndexByte(dsn, '/'); i >= 0 {
		dsn = dsn[:i]
	}
	return scheme + dsn + "/" + db + query
}
