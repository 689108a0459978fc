package chstore

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/store/chstore/schema"
)

// A cluster keeps the data in a database of the same name with the suffix
// below on every server; the DSN's database holds the Distributed tables of
// the same names, so the store's statements run unchanged.
const localSuffix = "_local"

// clusterSettings make a Distributed table behave like the single table the
// store is written for. Inserts return once every shard has its rows, so the
// next batch reads the visits the last one wrote; an IN subquery runs on each
// shard over its own rows, which is whole visits.
var clusterSettings = clickhouse.Settings{
	"insert_distributed_sync": 1,
}

// withClusterSettings adds clusterSettings to the DSN's. On a cluster with
// replicas an insert also returns only once every replica of its shard has
// the rows (insert_quorum), since a read may go to any of them: the next
// batch must find the events and visits this one wrote.
func withClusterSettings(dsn clickhouse.Settings, replicas uint32) clickhouse.Settings {
	settings := clickhouse.Settings{}
	for k, v := range dsn {
		settings[k] = v
	}
	for k, v := range clusterSettings {
		settings[k] = v
	}
	if replicas > 1 {
		settings["insert_quorum"] = int(replicas)
	}
	return settings
}

// clusterConn adds distributed_product_mode = 'local' to every SELECT: an IN
// subquery then reads each shard's own rows, which are whole visits. It is
// in the query's text because 18.16's protocol carries only numeric settings.
type clusterConn struct{ driver.Conn }

func (c clusterConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	return c.Conn.Query(ctx, localSubqueries(query), args...)
}

func (c clusterConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	return c.Conn.QueryRow(ctx, localSubqueries(query), args...)
}

func (c clusterConn) Select(ctx context.Context, dest any, query string, args ...any) error {
	return c.Conn.Select(ctx, dest, localSubqueries(query), args...)
}

func localSubqueries(query string) string {
	q := strings.TrimSpace(query)
	if strings.HasPrefix(q, "SELECT") || strings.HasPrefix(q, "WITH") {
		return q + "\nSETTINGS distributed_product_mode = 'local'"
	}
	return query
}

// clusterServer is a server of the cluster as remote_servers names it.
type clusterServer struct {
	shard, replica uint32
	addr           string
}

// createCluster applies the schema on every server of the cluster, each
// through its own connection since 18.16 runs ON CLUSTER statements only
// with ZooKeeper, and creates the Distributed tables on each of them and on
// the DSN's server. A shard with several replicas gets Replicated tables.
func createCluster(ctx context.Context, chOpts *clickhouse.Options, database, cluster string) (replicas uint32, err error) {
	entry, err := openOn(chOpts, chOpts.Addr, "default")
	if err != nil {
		return 0, err
	}
	defer entry.Close()

	servers, err := clusterServers(ctx, entry, cluster)
	if err != nil {
		return 0, err
	}
	for _, s := range servers {
		replicas = max(replicas, s.replica)
	}
	replicated := replicas > 1

	local := database + localSuffix
	steps := []uint32{0} // every step at once
	if replicated {
		steps = steps[:0]
		for _, m := range schema.Migrations {
			steps = append(steps, m.Version)
		}
	}
	for _, upTo := range steps {
		for _, s := range servers {
			if err := createShardTables(ctx, chOpts, s, local, replicated, upTo); err != nil {
				return 0, fmt.Errorf("chstore: cluster %s, server %s: %w", cluster, s.addr, err)
			}
		}
	}
	first, err := openOn(chOpts, []string{servers[0].addr}, local)
	if err != nil {
		return 0, err
	}
	defer first.Close()

	addrs := [][]string{chOpts.Addr}
	for _, s := range servers {
		addrs = append(addrs, []string{s.addr})
	}
	for _, addr := range addrs {
		if err := distribute(ctx, chOpts, addr, database, first, cluster, local); err != nil {
			return 0, fmt.Errorf("chstore: cluster %s, server %s: %w", cluster, addr[0], err)
		}
	}
	return replicas, nil
}

// clusterServers reads the servers of cluster from the server behind conn.
func clusterServers(ctx context.Context, conn driver.Conn, cluster string) ([]clusterServer, error) {
	rows, err := conn.Query(ctx,
		"SELECT shard_num, replica_num, host_address, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num",
		cluster)
	if err != nil {
		return nil, fmt.Errorf("chstore: %w", classify("read system.clusters", err))
	}
	defer rows.Close()
	var servers []clusterServer
	for rows.Next() {
		var s clusterServer
		var host string
		var port uint16
		if err := rows.Scan(&s.shard, &s.replica, &host, &port); err != nil {
			return nil, fmt.Errorf("chstore: read system.clusters: %w", err)
		}
		s.addr = net.JoinHostPort(host, strconv.Itoa(int(port)))
		servers = append(servers, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chstore: read system.clusters: %w", err)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("chstore: the server has no cluster %q in its remote_servers", cluster)
	}
	return servers, nil
}

// createShardTables applies the schema in the local database of one server,
// up to the step upTo when replicated.
func createShardTables(ctx context.Context, chOpts *clickhouse.Options, s clusterServer, local string, replicated bool, upTo uint32) error {
	if err := ensureDatabaseOn(ctx, chOpts, []string{s.addr}, local); err != nil {
		return err
	}
	conn, err := openOn(chOpts, []string{s.addr}, local)
	if err != nil {
		return err
	}
	defer conn.Close()
	f, err := schema.Detect(ctx, conn)
	if err != nil {
		return err
	}
	if replicated {
		// The path names the shard, so the replicas of one shard share it.
		zkPath := fmt.Sprintf("/clickhouse/pocketlytics/%s/%d", local, s.shard)
		_, err = schema.ApplyReplicated(ctx, conn, f, zkPath, s.addr, upTo)
	} else {
		_, err = schema.Apply(ctx, conn, f)
	}
	return err
}

// distribute creates the DSN's database and its Distributed tables on the
// server at addr, with the columns of the local tables that first reads.
func distribute(ctx context.Context, chOpts *clickhouse.Options, addr []string, database string, first driver.Conn, cluster, local string) error {
	if err := ensureDatabaseOn(ctx, chOpts, addr, database); err != nil {
		return err
	}
	conn, err := openOn(chOpts, addr, database)
	if err != nil {
		return err
	}
	defer conn.Close()
	return schema.Distribute(ctx, conn, first, cluster, local)
}

func ensureDatabaseOn(ctx context.Context, chOpts *clickhouse.Options, addr []string, database string) error {
	conn, err := openOn(chOpts, addr, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	return schema.EnsureDatabase(ctx, conn, database)
}

// openOn opens one connection with the DSN's credentials to database on addr.
func openOn(chOpts *clickhouse.Options, addr []string, database string) (driver.Conn, error) {
	o := *chOpts
	o.Addr = addr
	o.Auth.Database = database
	o.MaxOpenConns = 1
	conn, err := clickhouse.Open(&o)
	if err != nil {
		return nil, fmt.Errorf("chstore: %w", classify("connect", err))
	}
	return conn, nil
}
