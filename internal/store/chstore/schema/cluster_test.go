package schema

import "testing"

func TestReplicatedEngine(t *testing.T) {
	tests := []struct{ name, stmt, want string }{
		{
			"plain MergeTree",
			"CREATE TABLE IF NOT EXISTS events (id String) ENGINE = MergeTree() PARTITION BY toYYYYMM(ts) ORDER BY id",
			"CREATE TABLE IF NOT EXISTS events (id String) ENGINE = ReplicatedMergeTree('/zk/1/events', 'ch1:9000') PARTITION BY toYYYYMM(ts) ORDER BY id",
		},
		{
			"engine arguments kept after the replica's",
			"CREATE TABLE IF NOT EXISTS visits (sign Int8) ENGINE = VersionedCollapsingMergeTree(sign, version) ORDER BY sign",
			"CREATE TABLE IF NOT EXISTS visits (sign Int8) ENGINE = ReplicatedVersionedCollapsingMergeTree('/zk/1/visits', 'ch1:9000', sign, version) ORDER BY sign",
		},
		{
			"not a CREATE TABLE",
			"ALTER TABLE events ADD COLUMN engaged UInt32 DEFAULT 0",
			"ALTER TABLE events ADD COLUMN engaged UInt32 DEFAULT 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replicatedEngine(tt.stmt, "/zk/1", "ch1:9000"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// Every CREATE TABLE of the migrations is one the rewrite understands, so a
// replica never gets a table that is not replicated.
func TestReplicatedEngineCoversMigrations(t *testing.T) {
	for _, f := range []Features{{}, {LowCardinality: true, TTL: true}} {
		for _, m := range Migrations {
			for _, stmt := range m.Up(f) {
				if createdTable.MatchString(stmt) && !treeEngine.MatchString(stmt) {
					t.Errorf("migration %d creates a table whose engine is not rewritten:\n%s", m.Version, stmt)
				}
			}
		}
	}
}
