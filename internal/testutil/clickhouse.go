package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func dropClickHouseDatabase(t testing.TB, base, db string) {
	opts, err := clickhouse.ParseDSN(withDatabase(base, "default"))
	if err != nil {
		t.Logf("drop %s: %v", db, err)
		return
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Logf("drop %s: %v", db, err)
		return
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Logf("drop %s: %v", db, err)
	}
}
