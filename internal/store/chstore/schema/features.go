package schema

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Features are what the connected server supports, learned at start from
// version() and the system tables rather than assumed from a version number.
type Features struct {
	// Version is what version() returned, e.g. "18.16.1" or "24.8.4.13".
	Version string
	// Major and Minor are parsed from Version (0 when it does not parse).
	Major, Minor int

	// LowCardinality: the LowCardinality data type exists and is not gated
	// behind allow_experimental_low_cardinality_type (it is on 18.16).
	LowCardinality bool

	// TTL: MergeTree tables accept TTL expressions (19.6+, recognised by the
	// merge_with_ttl_timeout MergeTree setting).
	TTL bool

	// InsertDeduplicationToken: the insert_deduplication_token query setting
	// exists (22.2+).
	InsertDeduplicationToken bool

	// NonReplicatedDeduplicationWindow: a plain MergeTree can remember the
	// hashes of recent inserts (the non_replicated_deduplication_window
	// MergeTree setting exists).
	NonReplicatedDeduplicationWindow bool

	// MaxInsertBlockSize is the server's max_insert_block_size (1048576 by
	// default). A native insert of at most this many rows is one block and so
	// one part per partition.
	MaxInsertBlockSize int
}

// TokenDeduplication reports whether the server can drop a retried insert by
// its token: both the query setting and the table setting are needed.
func (f Features) TokenDeduplication() bool {
	return f.InsertDeduplicationToken && f.NonReplicatedDeduplicationWindow
}

func (f Features) String() string {
	return fmt.Sprintf("ClickHouse %s (LowCardinality=%t TTL=%t dedup token=%t)",
		f.Version, f.LowCardinality, f.TTL, f.TokenDeduplication())
}

// Detect queries the server behind conn for its features. It reads only
// tables that exist on every supported version (system.settings,
// system.merge_tree_settings, system.tables); system.data_type_families is
// consulted only when present.
func Detect(ctx context.Context, conn driver.Conn) (Features, error) {
	var f Features
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&f.Version); err != nil {
		return f, fmt.Errorf("detect server version: %w", err)
	}
	f.Major, f.Minor = parseVersion(f.Version)

	settings, err := namedValues(ctx, conn, "system.settings",
		"allow_experimental_low_cardinality_type", "insert_deduplication_token", "max_insert_block_size")
	if err != nil {
		return f, err
	}
	mergeTree, err := namedValues(ctx, conn, "system.merge_tree_settings",
		"merge_with_ttl_timeout", "non_replicated_deduplication_window")
	if err != nil {
		return f, err
	}

	_, f.InsertDeduplicationToken = settings["insert_deduplication_token"]
	_, f.TTL = mergeTree["merge_with_ttl_timeout"]
	_, f.NonReplicatedDeduplicationWindow = mergeTree["non_replicated_deduplication_window"]
	f.MaxInsertBlockSize, _ = strconv.Atoi(settings["max_insert_block_size"])
	if f.MaxInsertBlockSize <= 0 {
		f.MaxInsertBlockSize = 1048576
	}

	var families uint64
	err = conn.QueryRow(ctx,
		"SELECT count() FROM system.tables WHERE database = 'system' AND name = 'data_type_families'",
	).Scan(&families)
	if err != nil {
		return f, fmt.Errorf("detect data types: %w", err)
	}
	if families > 0 {
		var n uint64
		err := conn.QueryRow(ctx,
			"SELECT count() FROM system.data_type_families WHERE name = 'LowCardinality'",
		).Scan(&n)
		if err != nil {
			return f, fmt.Errorf("detect data types: %w", err)
		}
		// Where the experimental switch still exists and is off (18.x),
		// creating such a column fails; newer servers made it obsolete.
		gate, gated := settings["allow_experimental_low_cardinality_type"]
		f.LowCardinality = n > 0 && (!gated || gate != "0")
	}
	return f, nil
}

// namedValues returns name → value of the given rows of a system settings table.
func namedValues(ctx context.Context, conn driver.Conn, table string, names ...string) (map[string]string, error) {
	set := clickhouse.GroupSet{}
	for _, n := range names {
		set.Value = append(set.Value, n)
	}
	rows, err := conn.Query(ctx, "SELECT name, value FROM "+table+" WHERE name IN ?", set)
	if err != nil {
		return nil, fmt.Errorf("detect features from %s: %w", table, err)
	}
	defer rows.Close()
	values := make(map[string]string, len(names))
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("detect features from %s: %w", table, err)
		}
		values[name] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("detect features from %s: %w", table, err)
	}
	return values, nil
}

// parseVersion returns the first two numbers of a dotted version string.
func parseVersion(v string) (major, minor int) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return major, minor
}
