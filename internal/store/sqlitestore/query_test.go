package sqlitestore

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// TODO(queries): switch to Open + Insert when the store lands.
func openTestDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "analytics.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	createSchema(t, db)
	return db
}

func createSchema(t testing.TB, db *sql.DB) {
	_, err := db.Exec(`CREATE TABLE IF NOT EXISTS events (
  id TEXT NOT NULL, ts INTEGER NOT NULL, site_id TEXT NOT NULL, type TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '', props TEXT NOT NULL DEFAULT '{}', hostname TEXT NOT NULL DEFAULT '',
  pathname TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '', referrer_host TEXT NOT NULL DEFAULT '',
  channel TEXT NOT NULL DEFAULT '', utm_source TEXT NOT NULL DEFAULT '', utm_medium TEXT NOT NULL DEFAULT '',
  utm_campaign TEXT NOT NULL DEFAULT '', utm_term TEXT NOT NULL DEFAULT '', utm_content TEXT NOT NULL DEFAULT '',
  country TEXT NOT NULL DEFAULT '', region TEXT NOT NULL DEFAULT '', city TEXT NOT NULL DEFAULT '',
  latitude REAL NOT NULL DEFAULT 0, longitude REAL NOT NULL DEFAULT 0, device TEXT NOT NULL DEFAULT '',
  browser TEXT NOT NULL DEFAULT '', os TEXT NOT NULL DEFAULT '', screen_width INTEGER NOT NULL DEFAULT 0,
  visitor_id INTEGER NOT NULL, session_id INTEGER NOT NULL, entry INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events (id);
CREATE INDEX IF NOT EXISTS events_site_ts ON events (site_id, ts);`)
	if err != nil {
		t.Fatal(err)
	}
}

func insertEvents(t testing.TB, db *sql.DB, evs []event.Event) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO events (id, ts, site_id, type, name, props, hostname, pathname, title,
  referrer_host, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, country, region, city,
  latitude, longitude, device, browser, os, screen_width, visitor_id, session_id, entry)
  VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		props := []byte("{}")
		if len(e.Props) > 0 {
			props, _ = json.Marshal(e.Props)
		}
		_, err := stmt.Exec(e.ID, e.Time.UnixMilli(), e.SiteID, e.Type, e.Name, string(props), e.Hostname, e.Pathname, e.Title,
			e.ReferrerHost, e.Channel, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent, e.Country, e.Region, e.City,
			e.Latitude, e.Longitude, e.Device, e.Browser, e.OS, e.ScreenWidth, int64(e.VisitorID), int64(e.SessionID), e.Entry)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestQueriesMatchReference(t *testing.T) {
	opts := storetest.DefaultOptions()
	ds := storetest.Generate(opts)
	db := openTestDB(t)
	insertEvents(t, db, ds.Events)
	storetest.Check(t, newQuerier(db), opts, ds)
}
