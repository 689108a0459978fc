package chstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sort"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// TODO(queries): switch to testutil.ClickHouseDSN + Open + Insert when they land.
func openTestConn(t testing.TB) driver.Conn {
	t.Helper()
	dsn := os.Getenv("CLICKHOUSE_URL")
	if dsn == "" {
		t.Skip("CLICKHOUSE_URL is not set: start ClickHouse with scripts/services.sh")
	}
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	db := "pl_test_" + hex.EncodeToString(b)
	opts.Auth.Database = "default"
	admin, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		admin.Close()
	})
	opts.Auth.Database = db
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	createSchema(t, conn)
	return conn
}

func createSchema(t testing.TB, conn driver.Conn) {
	err := conn.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS events (
  id String, ts DateTime, site_id String, type String, name String,
  prop_keys Array(String), prop_values Array(String),
  hostname String, pathname String, title String, referrer_host String, channel String,
  utm_source String, utm_medium String, utm_campaign String, utm_term String, utm_content String,
  country String, region String, city String, latitude Float64, longitude Float64,
  device String, browser String, os String, screen_width UInt16,
  visitor_id UInt64, session_id UInt64, entry UInt8
) ENGINE = MergeTree() PARTITION BY toYYYYMM(ts) ORDER BY (site_id, toDate(ts), ts)`)
	if err != nil {
		t.Fatal(err)
	}
}

func insertEvents(t testing.TB, conn driver.Conn, evs []event.Event) {
	t.Helper()
	ctx := context.Background()
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO events (id, ts, site_id, type, name, prop_keys, prop_values,
  hostname, pathname, title, referrer_host, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
  country, region, city, latitude, longitude, device, browser, os, screen_width, visitor_id, session_id, entry)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		keys := make([]string, 0, len(e.Props))
		for k := range e.Props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = e.Props[k]
		}
		var entry uint8
		if e.Entry {
			entry = 1
		}
		err := batch.Append(e.ID, e.Time, e.SiteID, e.Type, e.Name, keys, vals, e.Hostname, e.Pathname, e.Title,
			e.ReferrerHost, e.Channel, e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent,
			e.Country, e.Region, e.City, e.Latitude, e.Longitude, e.Device, e.Browser, e.OS, uint16(e.ScreenWidth),
			e.VisitorID, e.SessionID, entry)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestQueriesKnownAnswers checks the answers worked out by hand.
func TestQueriesKnownAnswers(t *testing.T) {
	conn := openTestConn(t)
	insertEvents(t, conn, storetest.KnownEvents())
	storetest.CheckKnown(t, newQuerier(conn))
}

// TestQueriesMatchReference runs the parity matrix (see storetest.Check)
// on a fresh database of the real server.
func TestQueriesMatchReference(t *testing.T) {
	opts := storetest.DefaultOptions()
	ds := storetest.Generate(opts)
	conn := openTestConn(t)
	insertEvents(t, conn, ds.Events)
	storetest.Check(t, newQuerier(conn), opts, ds)
}
