package sqlitestore

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestUniq checks the Go aggregates against SQLite's own count(DISTINCT):
// uniq_exact over integers (0 and negative ones among them) and strings,
// per group and overall, and uniq_merge over the counted sets of groups
// that share many ids, as uniq_delta builds them and uniq_add sums them.
func TestUniq(t *testing.T) {
	s := openStore(t)
	if _, err := s.wdb.Exec("CREATE TABLE u (g INTEGER, id INTEGER, s TEXT)"); err != nil {
		t.Fatal(err)
	}
	tx, err := s.wdb.Begin()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		id := r.Int64N(5000) << 40
		if i%7 == 0 {
			id = r.Int64N(3)
		}
		if i%11 == 0 {
			id = -r.Int64N(1 << 62)
		}
		if _, err := tx.Exec("INSERT INTO u VALUES (?, ?, ?)", i%13, id, fmt.Sprint("v", id%997)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]string{
		"uniq_exact of integers": {"SELECT uniq_exact(id) FROM u", "SELECT count(DISTINCT id) FROM u"},
		"uniq_exact of strings":  {"SELECT uniq_exact(s) FROM u", "SELECT count(DISTINCT s) FROM u"},
		"uniq_exact of nothing":  {"SELECT uniq_exact(id) FROM u WHERE g < 0", "SELECT 0"},
		"uniq_exact per group": {
			"SELECT group_concat(n) FROM (SELECT g, uniq_exact(id) AS n FROM u GROUP BY g ORDER BY g)",
			"SELECT group_concat(n) FROM (SELECT g, count(DISTINCT id) AS n FROM u GROUP BY g ORDER BY g)"},
		"uniq_merge": {
			"SELECT uniq_merge(v) FROM (SELECT uniq_delta(id, 1) AS v FROM u GROUP BY g)",
			"SELECT count(DISTINCT id) FROM u"},
		"uniq_merge per group": {
			"SELECT group_concat(n) FROM (SELECT g % 3 AS h, uniq_merge(v) AS n FROM (SELECT g, uniq_delta(id, 1) AS v FROM u GROUP BY g) GROUP BY h ORDER BY h)",
			"SELECT group_concat(n) FROM (SELECT g % 3 AS h, count(DISTINCT id) AS n FROM u GROUP BY h ORDER BY h)"},
		"uniq_add taking the even ids away": {
			"SELECT uniq_merge(uniq_add(a.v, b.v)) FROM (SELECT g, uniq_delta(id, 1) AS v FROM u GROUP BY g) AS a " +
				"JOIN (SELECT g, uniq_delta(id, -1) AS v FROM u WHERE id % 2 = 0 GROUP BY g) AS b USING (g)",
			"SELECT count(DISTINCT id) FROM u WHERE id % 2 != 0"},
		"uniq_add taking all away": {
			"SELECT sum(length(uniq_add(a.v, b.v))) FROM (SELECT g, uniq_delta(id, 1) AS v FROM u GROUP BY g) AS a " +
				"JOIN (SELECT g, uniq_delta(id, -1) AS v FROM u GROUP BY g) AS b USING (g)",
			"SELECT 0"},
		"uniq_add, one visit more and one less": {
			"SELECT uniq_merge(uniq_add(uniq_add(a.v, a.v), b.v)) FROM (SELECT g, uniq_delta(id, 1) AS v FROM u GROUP BY g) AS a " +
				"JOIN (SELECT g, uniq_delta(id, -1) AS v FROM u GROUP BY g) AS b USING (g)",
			"SELECT count(DISTINCT id) FROM u"},
	} {
		var got, want string
		if err := s.db.QueryRow(pair[0]).Scan(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := s.db.QueryRow(pair[1]).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}
}
