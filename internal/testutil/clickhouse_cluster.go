package testutil

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouseClusterDSN is ClickHouseDSN for a store spread over the cluster
// that the variable env names (scripts/services.sh sets CLICKHOUSE_TEST_SHARDS
// and CLICKHOUSE_TEST_REPLICAS), or skips the test. At its end the database,
// and the shards' database beside it (name_local), are dropped on every
// server of the cluster.
func ClickHouseClusterDSN(t testing.TB, env string) (dsn, cluster string) {
	t.Helper()
	cluster = os.Getenv(env)
	if cluster == "" {
		t.Skipf("%s not set: run the suite with scripts/test.sh (make test)", env)
	}
	base := ClickHouseURL(t)
	db := Unique("pl_test_")
	t.Cleanup(func() {
		for _, addr := range clusterAddrs(t, base, cluster) {
			server := withAddr(base, addr)
			dropClickHouseDatabase(t, server, db)
			dropClickHouseDatabase(t, server, db+"_local")
		}
	})
	return withDatabase(base, db), cluster
}

// clusterAddrs lists the servers of cluster, and the DSN's own.
func clusterAddrs(t testing.TB, base, cluster string) []string {
	opts, err := clickhouse.ParseDSN(withDatabase(base, "default"))
	if err != nil {
		t.Logf("read cluster %s: %v", cluster, err)
		return nil
	}
	addrs := opts.Addr
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Logf("read cluster %s: %v", cluster, err)
		return addrs
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, "SELECT host_address, port FROM system.clusters WHERE cluster = ?", cluster)
	if err != nil {
		t.Logf("read cluster %s: %v", cluster, err)
		return addrs
	}
	defer rows.Close()
	for rows.Next() {
		var host string
		var port uint16
		if err := rows.Scan(&host, &port); err != nil {
			t.Logf("read cluster %s: %v", cluster, err)
			break
		}
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	return addrs
}

// withAddr swaps the host:port of a clickhouse:// DSN for addr.
func withAddr(dsn, addr string) string {
	scheme, rest := "", dsn
	if i := strings.Index(rest, "://"); i >= 0 {
		scheme, rest = rest[:i+3], rest[i+3:]
	}
	userinfo := ""
	if i := strings.Index(rest, "@"); i >= 0 {
		userinfo, rest = rest[:i+1], rest[i+1:]
	}
	end := len(rest)
	for i, c := range rest {
		if c == '/' || c == '?' {
			end = i
			break
		}
	}
	return scheme + userinfo + addr + rest[end:]
}
