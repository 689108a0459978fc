package chstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// testCluster is a store on a fresh database spread over the cluster named
// by the variable env (see testutil.ClickHouseClusterDSN), with one
// connection to the local database of each of the cluster's servers.
type testCluster struct {
	store   *Store
	dsn     string
	cluster string
	servers []clusterServer
	locals  []driver.Conn
}

func openCluster(t testing.TB, env string) *testCluster {
	t.Helper()
	ctx := context.Background()
	dsn, name := testutil.ClickHouseClusterDSN(t, env)
	chOpts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := openOn(chOpts, chOpts.Addr, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer entry.Close()
	servers, err := clusterServers(ctx, entry, name)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{dsn: dsn, cluster: name, servers: servers}
	c.store = c.open(t)
	for _, s := range servers {
		conn, err := openOn(chOpts, []string{s.addr}, chOpts.Auth.Database+localSuffix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c.locals = append(c.locals, conn)
	}
	return c
}

// open opens another store on the cluster's database.
func (c *testCluster) open(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), c.dsn, Options{Cluster: c.cluster})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func count(t *testing.T, conn driver.Conn, query string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestClusterShards: N events in are N rows out across two shards, each
// shard holds some, and a visit's events, visit row and values are all on
// one shard.
func TestClusterShards(t *testing.T) {
	c := openCluster(t, "CLICKHOUSE_TEST_SHARDS")
	if len(c.servers) < 2 || c.servers[1].shard == c.servers[0].shard {
		t.Fatalf("cluster %s has servers %v, want two shards", c.cluster, c.servers)
	}
	ds := storetest.Generate(storetest.DefaultOptions())
	load(t, c.store, ds.Events)
	// Redelivered batches are dropped as on one server.
	load(t, c.store, ds.Events[:5000])

	if got := count(t, c.store.conn, "SELECT count() FROM events"); got != uint64(len(ds.Events)) {
		t.Fatalf("Distributed events has %d rows, want %d", got, len(ds.Events))
	}
	var sum uint64
	for i, conn := range c.locals {
		n := count(t, conn, "SELECT count() FROM events")
		if n == 0 {
			t.Errorf("shard %d holds no events", c.servers[i].shard)
		}
		t.Logf("shard %d: %d events", c.servers[i].shard, n)
		sum += n
	}
	if sum != uint64(len(ds.Events)) {
		t.Fatalf("the shards hold %d events, want %d", sum, len(ds.Events))
	}

	// Every session id of a shard's visits and values appears in its events,
	// and in no other shard's.
	for i, conn := range c.locals {
		for _, table := range []string{"visits", "visit_values"} {
			q := fmt.Sprintf("SELECT count() FROM (SELECT DISTINCT session_id FROM %s) WHERE session_id NOT IN (SELECT session_id FROM events)", table)
			if n := count(t, conn, q); n != 0 {
				t.Errorf("shard %d: %d sessions of %s have their events elsewhere", c.servers[i].shard, n, table)
			}
		}
	}
	// A session on both shards would count once in all and once per shard.
	var perShard uint64
	for _, conn := range c.locals {
		perShard += count(t, conn, "SELECT uniqExact(session_id) FROM events")
	}
	if all := count(t, c.store.conn, "SELECT uniqExact(session_id) FROM events"); perShard != all {
		t.Errorf("%d sessions, %d counted shard by shard: some have events on both shards", all, perShard)
	}
}

// TestClusterQueriesMatchReference runs the parity matrix that the single
// server passes (TestQueriesMatchReference) through the Distributed tables,
// on two of its sites: a clock change and a UTC one are enough to show the
// shards answer as one server, at half the time.
func TestClusterQueriesMatchReference(t *testing.T) {
	c := openCluster(t, "CLICKHOUSE_TEST_SHARDS")
	opts := storetest.DefaultOptions()
	opts.Sites = []storetest.Site{opts.Sites[1], opts.Sites[3]}
	ds := storetest.Generate(opts)
	load(t, c.store, ds.Events)
	storetest.Check(t, c.store, opts, ds, true)
}

// TestClusterKnownAnswers and redelivery on the cluster, as on one server.
func TestClusterKnownAnswers(t *testing.T) {
	c := openCluster(t, "CLICKHOUSE_TEST_SHARDS")
	load(t, c.store, storetest.KnownEvents())
	storetest.CheckKnown(t, c.store)
	storetest.CheckRedelivery(t, openCluster(t, "CLICKHOUSE_TEST_SHARDS").store)
}

// TestClusterReopen: a column a later step adds to the shards' tables is
// added to the Distributed table when the store opens again.
func TestClusterReopen(t *testing.T) {
	c := openCluster(t, "CLICKHOUSE_TEST_SHARDS")
	for _, conn := range c.locals {
		if err := conn.Exec(context.Background(), "ALTER TABLE events ADD COLUMN later String DEFAULT 'x'"); err != nil {
			t.Fatal(err)
		}
	}
	s := c.open(t)
	load(t, s, makeEvents(10, time.Now()))
	if got := count(t, s.conn, "SELECT count() FROM events WHERE later = 'x'"); got != 10 {
		t.Fatalf("%d rows read the new column through the Distributed table, want 10", got)
	}
}

// TestClusterReplicas: on a shard with two replicas the tables are
// Replicated, and each replica ends up with every row.
func TestClusterReplicas(t *testing.T) {
	c := openCluster(t, "CLICKHOUSE_TEST_REPLICAS")
	if len(c.servers) < 2 || c.servers[1].replica < 2 {
		t.Fatalf("cluster %s has servers %v, want two replicas", c.cluster, c.servers)
	}
	events := makeEvents(2000, time.Date(2024, 3, 31, 23, 0, 0, 0, time.UTC))
	load(t, c.store, events)
	load(t, c.store, events[:500])

	for i, conn := range c.locals {
		engine := ""
		err := conn.QueryRow(context.Background(),
			"SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'visits'").Scan(&engine)
		if err != nil || engine != "ReplicatedVersionedCollapsingMergeTree" {
			t.Fatalf("replica %d: visits engine %q (%v)", c.servers[i].replica, engine, err)
		}
		if err := conn.Exec(context.Background(), "SYSTEM SYNC REPLICA events"); err != nil {
			t.Fatal(err)
		}
		if got := count(t, conn, "SELECT count() FROM events"); got != uint64(len(events)) {
			t.Errorf("replica %d has %d events, want %d", c.servers[i].replica, got, len(events))
		}
	}
}

// BenchmarkClusterInsertDay is BenchmarkInsertDay through the Distributed
// tables of two shards; run both in one go to compare them.
func BenchmarkClusterInsertDay(b *testing.B) {
	c := openCluster(b, "CLICKHOUSE_TEST_SHARDS")
	storetest.BenchInsert(b, c.store, 10000)
}
