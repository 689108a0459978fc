package schema

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Sharded are the tables a cluster splits over its shards, each with the key
// that picks a row's shard. The rows of one visit share its session id, so
// its events, visits row and values rows sit on one shard and a query that
// joins them within a visit can run on each shard alone.
var Sharded = []struct{ Table, Key string }{
	{"events", "cityHash64(session_id)"},
	{"visits", "cityHash64(session_id)"},
	{"visit_values", "cityHash64(session_id)"},
	{"backfill_days", "rand()"},
}

// ApplyReplicated is Apply, up to the step upTo, for a server that is one
// replica of a shard: every MergeTree-family table is created with the
// Replicated engine of its family, at zkPath/<table> in ZooKeeper under the
// name replica. A replica's table must be created with the columns the
// others' have in ZooKeeper, so the replicas take the steps in step.
func ApplyReplicated(ctx context.Context, conn driver.Conn, f Features, zkPath, replica string, upTo uint32) ([]uint32, error) {
	var steps []Migration
	for _, m := range Migrations {
		if m.Version > upTo {
			break
		}
		up := m.Up
		m.Up = func(f Features) []string {
			stmts := up(f)
			for j, stmt := range stmts {
				stmts[j] = replicatedEngine(stmt, zkPath, replica)
			}
			return stmts
		}
		steps = append(steps, m)
	}
	return apply(ctx, conn, f, steps)
}

var (
	createdTable = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS (\w+)`)
	treeEngine   = regexp.MustCompile(`ENGINE = (\w*MergeTree)\(([^)]*)\)`)
)

// replicatedEngine rewrites the engine of a CREATE TABLE statement:
// VersionedCollapsingMergeTree(sign, version) becomes
// ReplicatedVersionedCollapsingMergeTree('<zkPath>/<table>', '<replica>', sign, version).
func replicatedEngine(stmt, zkPath, replica string) string {
	table := createdTable.FindStringSubmatch(stmt)
	if table == nil {
		return stmt
	}
	return treeEngine.ReplaceAllStringFunc(stmt, func(engine string) string {
		m := treeEngine.FindStringSubmatch(engine)
		args := []string{quoteString(zkPath + "/" + table[1]), quoteString(replica)}
		if m[2] != "" {
			args = append(args, m[2])
		}
		return "ENGINE = Replicated" + m[1] + "(" + strings.Join(args, ", ") + ")"
	})
}

// Distribute creates, in the database of conn, a Distributed table over each
// Sharded table of the database local of every server of cluster, with the
// columns the local table has (read through from, a server that holds it),
// and adds the columns a later step gave the local table.
func Distribute(ctx context.Context, conn, from driver.Conn, cluster, local string) error {
	for _, t := range Sharded {
		want, err := columns(ctx, from, local, t.Table)
		if err != nil {
			return err
		}
		if len(want) == 0 {
			return fmt.Errorf("distribute %s: the table %s.%s is missing", t.Table, local, t.Table)
		}
		var defs []string
		for _, c := range want {
			defs = append(defs, c.definition())
		}
		stmt := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n\t%s\n) ENGINE = Distributed(%s, %s, %s, %s)",
			QuoteIdentifier(t.Table), strings.Join(defs, ",\n\t"),
			QuoteIdentifier(cluster), QuoteIdentifier(local), QuoteIdentifier(t.Table), t.Key)
		if err := execIdempotent(ctx, conn, stmt); err != nil {
			return fmt.Errorf("distribute %s: %w", t.Table, err)
		}

		have, err := columns(ctx, conn, "", t.Table)
		if err != nil {
			return err
		}
		known := make(map[string]bool, len(have))
		for _, c := range have {
			known[c.name] = true
		}
		for i, c := range want {
			if known[c.name] {
				continue
			}
			stmt := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", QuoteIdentifier(t.Table), c.definition())
			if i > 0 {
				stmt += " AFTER " + QuoteIdentifier(want[i-1].name)
			}
			if err := execIdempotent(ctx, conn, stmt); err != nil {
				return fmt.Errorf("distribute %s: %w", t.Table, err)
			}
		}
	}
	return nil
}

type column struct{ name, typ, defaultKind, defaultExpr string }

func (c column) definition() string {
	def := QuoteIdentifier(c.name) + " " + c.typ
	if c.defaultKind != "" {
		def += " " + c.defaultKind + " " + c.defaultExpr
	}
	return def
}

// columns lists a table's columns in order; database "" is the connection's.
func columns(ctx context.Context, conn driver.Conn, database, table string) ([]column, error) {
	db := "currentDatabase()"
	args := []any{table}
	if database != "" {
		db = "?"
		args = []any{database, table}
	}
	rows, err := conn.Query(ctx,
		"SELECT name, type, default_kind, default_expression FROM system.columns WHERE database = "+db+" AND table = ?", args...)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.defaultKind, &c.defaultExpr); err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", table, err)
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
