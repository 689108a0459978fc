package sqlitestore

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// crashOptions is the data the killed writer inserts, batch after batch.
func crashOptions() storetest.Options {
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	return storetest.Options{Seed: 3, Sites: []storetest.Site{{ID: "crash", Timezone: "UTC"}}, Sessions: 6000, From: from, To: from.AddDate(0, 0, 1)}
}

// TestKillDuringInsert SIGKILLs a process that is inserting batches, then
// checks that the events and the visits the killed process left agree (no
// visit without its events, none counted twice), and that delivering every
// batch again, as the queue would, gives the full data once.
func TestKillDuringInsert(t *testing.T) {
	if path := os.Getenv("PL_CRASH_WRITER"); path != "" {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = storetest.Stream(crashOptions(), 2000, func(evs []event.Event) error {
			return s.Insert(context.Background(), "", evs)
		})
		t.Fatal("the writer finished before it was killed", err)
	}

	path := filepath.Join(t.TempDir(), "analytics.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringInsert$")
	cmd.Env = append(os.Environ(), "PL_CRASH_WRITER="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Kill it once a few batches are in, in the middle of a later one (a
	// first batch can spill more than that to the WAL before it commits).
	deadline := time.Now().Add(time.Minute)
	for {
		if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 1<<20 && committed(path) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer wrote nothing within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := count(t, s.db)
	if n == 0 || n%2000 != 0 {
		t.Fatalf("%d events after the kill, want whole batches of 2000", n)
	}
	checkVisitsMatchEvents(t, s)

	_, err = storetest.Stream(crashOptions(), 2000, func(evs []event.Event) error {
		return s.Insert(context.Background(), "", evs)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkVisitsMatchEvents(t, s)
	ds := storetest.Generate(crashOptions())
	if got := count(t, s.db); got != len(ds.Events) {
		t.Fatalf("%d events after redelivery, want %d", got, len(ds.Events))
	}
}

// committed reports whether the database at path has committed events.
func committed(path string) bool {
	db, err := sql.Open("sqlite", path+"?mode=ro&"+commonPragmas)
	if err != nil {
		return false
	}
	defer db.Close()
	var n int
	return db.QueryRow("SELECT count(*) FROM events").Scan(&n) == nil && n > 0
}

// checkVisitsMatchEvents compares the visits and visit_values tables with
// those rebuilt from all stored events, and the rollups with those rebuilt
// from the visits.
func checkVisitsMatchEvents(t *testing.T, s *Store) {
	t.Helper()
	cols := strings.Join(sqlquery.VisitColumns, ", ")
	rebuilt := sqlquery.VisitsSQL(dialect{}, sqlquery.Frag{SQL: "1 = 1"}).SQL
	for name, q := range map[string]string{
		"visits not matching their events": "SELECT count(*) FROM (SELECT " + cols + " FROM visits EXCEPT " + rebuilt + ")",
		"events without their visit":       "SELECT count(*) FROM (" + rebuilt + " EXCEPT SELECT " + cols + " FROM visits)",
		"values not matching their events": "SELECT count(*) FROM (SELECT " + valueColumns + " FROM visit_values EXCEPT " + valuesSQL("1 = 1") + ")",
		"events without their values":      "SELECT count(*) FROM (" + valuesSQL("1 = 1") + " EXCEPT SELECT " + valueColumns + " FROM visit_values)",
	} {
		var n int
		if err := s.db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%s: %d", name, n)
		}
	}
	checkRollupsMatchVisits(t, s)
	var visits, values, rollups int
	s.db.QueryRow("SELECT count(*) FROM visits").Scan(&visits)
	s.db.QueryRow("SELECT count(*) FROM visit_values").Scan(&values)
	s.db.QueryRow("SELECT count(*) FROM rollups").Scan(&rollups)
	t.Logf("%d events, %d visits, %d visit values, %d rollups consistent", count(t, s.db), visits, values, rollups)
}

// checkRollupsMatchVisits compares every site's rollups, counted visitor
// sets included, with those rebuilt from its visits over all time.
func checkRollupsMatchVisits(t *testing.T, s *Store) {
	t.Helper()
	rebuilt := rollupSQL("SELECT ?3 AS sign, * FROM visits WHERE "+rangeWhere,
		"SELECT ?3 AS sign, * FROM visit_values WHERE dim IN ("+valueDims+") AND "+rangeWhere)
	stored := "SELECT " + rollupColumns + " FROM rollups WHERE site_id = ?1 AND slot >= ?2 AND slot < ?4 AND ?3 = 1"
	var sites []string
	rows, err := s.db.Query("SELECT DISTINCT site_id FROM visits UNION SELECT DISTINCT site_id FROM rollups")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var site string
		rows.Scan(&site)
		sites = append(sites, site)
	}
	rows.Close()
	for _, site := range sites {
		for name, q := range map[string]string{
			"rollups not matching their visits": stored + " EXCEPT SELECT * FROM (" + rebuilt + ")",
			"visits without their rollups":      "SELECT * FROM (" + rebuilt + ") EXCEPT " + stored,
		} {
			var n int
			if err := s.db.QueryRow("SELECT count(*) FROM ("+q+")", site, int64(-1)<<62, 1, int64(1)<<62).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("site %s: %s: %d", site, name, n)
			}
		}
	}
}
