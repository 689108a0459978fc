package chstore

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// crashOptions is the data the killed writer inserts, batch after batch.
func crashOptions() storetest.Options {
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	return storetest.Options{Seed: 3, Sites: []storetest.Site{{ID: "crash", Timezone: "UTC"}}, Sessions: 6000, From: from, To: from.AddDate(0, 0, 1)}
}

// TestKillDuringInsert SIGKILLs a process that is inserting batches, then
// checks what it left: whole batches of events, no visit or visit value
// counted twice, none without its events (a visit can only lag its events,
// until the batch is delivered again); and that delivering every batch
// again, as the queue would, gives the full data once, with the visits and
// values of the events; the rollups match the rows stored at each point.
func TestKillDuringInsert(t *testing.T) {
	const size = 2000
	if dsn := os.Getenv("PL_CRASH_WRITER"); dsn != "" {
		s, err := Open(context.Background(), dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = storetest.Stream(crashOptions(), size, func(evs []event.Event) error {
			return s.Insert(context.Background(), "", evs)
		})
		t.Fatal("the writer finished before it was killed", err)
	}

	ctx := context.Background()
	dsn := testutil.ClickHouseDSN(t)
	s := openWithDSN(t, dsn)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringInsert$")
	cmd.Env = append(os.Environ(), "PL_CRASH_WRITER="+dsn)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Kill it once a few batches are in, while it writes a later one.
	deadline := time.Now().Add(2 * time.Minute)
	for countEvents(t, s) < 5*size {
		if time.Now().After(deadline) {
			t.Fatal("the writer stored too little within two minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	n := countEvents(t, s)
	if n%size != 0 {
		t.Fatalf("%d events after the kill, want whole batches of %d", n, size)
	}
	visits, values := liveVisits(t, s)
	wantVisits, wantValues := rebuiltVisits(t, s)
	lagging := len(wantVisits) - len(visits)
	for k, v := range visits {
		w, ok := wantVisits[k]
		if !ok || v.Pageviews > w.Pageviews || v.Events > w.Events {
			t.Fatalf("visit %v after the kill: %+v, its events make %+v", k, v, w)
		}
		if !v.equal(w) {
			lagging++
		}
		for vk := range values[k] {
			if _, ok := wantValues[k][vk]; !ok {
				t.Fatalf("visit %v has the value %v its events lack", k, vk)
			}
		}
	}
	t.Logf("killed with %d events and %d visits stored, %d visits behind their events", n, len(visits), lagging)
	checkRollups(t, s)

	_, err := storetest.Stream(crashOptions(), size, func(evs []event.Event) error {
		return s.Insert(ctx, "", evs)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := countEvents(t, s), len(storetest.Generate(crashOptions()).Events); got != want {
		t.Fatalf("%d events after redelivery, want %d", got, want)
	}
	visits, values = liveVisits(t, s)
	wantVisits, wantValues = rebuiltVisits(t, s)
	if len(visits) != len(wantVisits) || len(values) != len(wantValues) {
		t.Fatalf("after redelivery: %d visits with %d valued, the events make %d with %d",
			len(visits), len(values), len(wantVisits), len(wantValues))
	}
	for k, w := range wantVisits {
		if v := visits[k]; !v.equal(w) {
			t.Fatalf("visit %v after redelivery: %+v, its events make %+v", k, v, w)
		}
		for vk, w := range wantValues[k] {
			if v := values[k][vk]; !v.equal(w) {
				t.Fatalf("value %v of visit %v after redelivery: %+v, its events make %+v", vk, k, v, w)
			}
		}
		if len(values[k]) != len(wantValues[k]) {
			t.Fatalf("visit %v after redelivery: %d values, its events make %d", k, len(values[k]), len(wantValues[k]))
		}
	}
	checkRollups(t, s)
}

// openWithDSN opens a Store on an existing database, closed at cleanup.
func openWithDSN(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func countEvents(t *testing.T, s *Store) int {
	t.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), "SELECT count() FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// liveVisits returns the live rows of visits and visit_values, failing when
// a row's signs sum to anything but 0 or 1, or a visit (or one of its
// values) has more than one live row.
func liveVisits(t *testing.T, s *Store) (map[sessionKey]visit, map[sessionKey]map[valueKey]visitValue) {
	t.Helper()
	visits := collapsing[struct{}, visit]{}
	each(t, s, "SELECT "+visitSelect+", sign, version FROM visits", func(r driver.Rows) error {
		var v visit
		var sign int8
		var version uint32
		err := r.Scan(append(v.scanTargets(), &sign, &version)...)
		visits.add(sessionKey{v.SiteID, v.SessionID}, struct{}{}, v, sign, version)
		return err
	})
	values := collapsing[valueKey, visitValue]{}
	each(t, s, "SELECT "+valueSelect+", sign, version FROM visit_values", func(r driver.Rows) error {
		var x visitValue
		var sign int8
		var version uint32
		err := r.Scan(append(x.scanTargets(), &sign, &version)...)
		values.add(sessionKey{x.SiteID, x.SessionID}, valueKey{x.Dim, x.Value}, x, sign, version)
		return err
	})
	outVisits := map[sessionKey]visit{}
	for k, st := range visits {
		for vk, net := range st.net {
			if net < 0 || net > 1 {
				t.Fatalf("visit %v version %d: signs sum to %d", k, vk.version, net)
			}
			if _, dup := outVisits[k]; dup && net == 1 {
				t.Fatalf("visit %v has two live rows", k)
			}
			if net == 1 {
				outVisits[k] = st.rows[vk]
			}
		}
	}
	outValues := map[sessionKey]map[valueKey]visitValue{}
	for k, st := range values {
		for vk, net := range st.net {
			if net < 0 || net > 1 {
				t.Fatalf("value %v of visit %v version %d: signs sum to %d", vk.id, k, vk.version, net)
			}
			if _, dup := outValues[k][vk.id]; dup && net == 1 {
				t.Fatalf("value %v of visit %v has two live rows", vk.id, k)
			}
			if net == 1 {
				if outValues[k] == nil {
					outValues[k] = map[valueKey]visitValue{}
				}
				outValues[k][vk.id] = st.rows[vk]
			}
		}
	}
	return outVisits, outValues
}

// rebuiltVisits returns the visits and visit values that all stored events
// make, as the store builds them.
func rebuiltVisits(t *testing.T, s *Store) (map[sessionKey]visit, map[sessionKey]map[valueKey]visitValue) {
	t.Helper()
	all := sqlquery.Frag{SQL: "1 = 1"}
	visits := map[sessionKey]visit{}
	each(t, s, sqlquery.VisitsSQL(dialect{}, all).SQL, func(r driver.Rows) error {
		var v visit
		err := r.Scan(v.scanTargets()...)
		visits[sessionKey{v.SiteID, v.SessionID}] = v
		return err
	})
	values := map[sessionKey]map[valueKey]visitValue{}
	each(t, s, sqlquery.VisitValuesSQL(dialect{}, all).SQL, func(r driver.Rows) error {
		var x visitValue
		if err := r.Scan(x.scanTargets()[:len(sqlquery.VisitValueColumns)]...); err != nil {
			return err
		}
		k := sessionKey{x.SiteID, x.SessionID}
		x.complete(visits[k])
		if values[k] == nil {
			values[k] = map[valueKey]visitValue{}
		}
		values[k][valueKey{x.Dim, x.Value}] = x
		return nil
	})
	return visits, values
}

func each(t *testing.T, s *Store, query string, scan func(driver.Rows) error) {
	t.Helper()
	rows, err := s.conn.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
