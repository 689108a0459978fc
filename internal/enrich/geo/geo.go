// Package geo turns a client IP address, or the location headers of a
// trusted CDN, into a coarse location: country, region, city and the
// coordinates the dashboard's globe plots.
//
// Any MaxMind-format database works: GeoLite2/GeoIP2 City or Country, DB-IP
// City Lite, and the flat ip-location-db layouts. Records are decoded by
// field name and kind, not by a fixed schema. When a database has no
// coordinates (country-level databases), the country's centroid is used.
//
//	db, err := geo.Open("")                 // the embedded country database
//	loc := db.Lookup(netip.MustParseAddr("81.2.69.142"))
//	fmt.Println(loc.Country)                // "GB"
package geo

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is where a hit came from. The zero value means unknown.
type Location struct {
	Country   string // ISO 3166-1 alpha-2, upper case
	Region    string
	City      string
	Latitude  float64
	Longitude float64
}

// embeddedDB is the country database built into the binary, nil when the
// binary was built without it (see Download for those). embedded_db.go sets
// it; scripts/geo.sh writes that file next to the database it fetches, and
// git keeps neither.
// Embedded as a []byte the database stays in the binary's data, where an
// embed.FS read would copy it to the heap at every start (7.5 MB, which the
// GC then counts against its heap goal).
var embeddedDB []byte

// DB looks up locations in a MaxMind-format database. A nil *DB, or one
// without a database, finds nothing; Load gives it one later (a database
// still downloading at start). It is safe for concurrent use.
type DB struct {
	reader atomic.Pointer[maxminddb.Reader]

	// fallback places the addresses reader does not: the embedded country
	// database behind a configured one, which may cover only some addresses
	// (the IPv4 half of a city database).
	fallback *DB
}

var warnOnce sync.Once

// Embedded reports whether the binary embeds the country database.
func Embedded() bool { return len(embeddedDB) > 0 }

// Open opens the database at path, with the embedded country database
// answering for the addresses it does not place; an empty path opens the
// embedded country database. When the binary was built without it, Open logs
// a warning once (through slog's default logger) and returns a DB that finds
// nothing.
func Open(path string) (*DB, error) {
	if path != "" {
		db := &DB{}
		if Embedded() {
			db.fallback, _ = OpenBytes(embeddedDB)
		}
		return db, db.Load(path)
	}

	if !Embedded() {
		warnOnce.Do(func() {
			slog.Warn("geo: built without the embedded country database; run scripts/geo.sh before building or set GEOIP_DB. Locations stay empty.")
		})
		return &DB{}, nil
	}
	return OpenBytes(embeddedDB)
}

// OpenBytes opens a database held in memory. data must not change afterwards.
func OpenBytes(data []byte) (*DB, error) {
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geo: open database: %w", err)
	}
	db := &DB{}
	db.reader.Store(r)
	return db, nil
}

// Load opens the database at path and looks up in it from now on. A
// database db held before is left open: lookups may still be reading it.
func (db *DB) Load(path string) error {
	r, err := maxminddb.Open(path)
	if err != nil {
		return fmt.Errorf("geo: open %s: %w", path, err)
	}
	db.reader.Store(r)
	return nil
}

// Loaded reports whether db has a database.
func (db *DB) Loaded() bool { return db != nil && db.reader.Load() != nil }

// Close releases the database (a memory-mapped file for Open(path)).
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	db.fallback.Close()
	if r := db.reader.Swap(nil); r != nil {
		return r.Close()
	}
	return nil
}

// Lookup returns the location of ip, with centroid coordinates when the
// database has a country but no coordinates. Unknown, private and invalid
// addresses give the zero Location.
func (db *DB) Lookup(ip netip.Addr) Location {
	return db.lookup(ip).withCentroid()
}

// lookup is Lookup without the centroid fallback.
func (db *DB) lookup(ip netip.Addr) Location {
	if db == nil || !ip.IsValid() {
		return Location{}
	}
	r := db.reader.Load()
	if r == nil {
		return Location{}
	}
	var rec record
	if err := r.Lookup(ip.Unmap()).Decode(&rec); err != nil {
		return db.fallback.lookup(ip)
	}
	if loc := rec.location(); loc.Country != "" {
		return loc
	}
	return db.fallback.lookup(ip)
}

// Locate returns the location of a request from ip. When hs trusts a CDN
// whose headers name a country, the headers win; the database only fills
// what they lack (region, city, coordinates) if it agrees on the country,
// so a country-only CDN plus a city database still gives cities. Without
// such headers it is db.Lookup(ip).
func Locate(db *DB, hs Headers, h http.Header, ip netip.Addr) Location {
	loc, ok := hs.lookup(h)
	if !ok {
		return db.Lookup(ip)
	}
	noCoords := loc.Latitude == 0 && loc.Longitude == 0
	if loc.City == "" || loc.Region == "" || noCoords {
		// Take from the database only what describes the same place.
		d := db.lookup(ip)
		if normCountry(d.Country) == loc.Country && (loc.City == "" || loc.City == d.City) {
			if loc.City == "" {
				loc.City = d.City
			}
			if loc.Region == "" {
				loc.Region = d.Region
			}
			if noCoords {
				loc.Latitude, loc.Longitude = d.Latitude, d.Longitude
			}
		}
	}
	return loc.withCentroid()
}

// withCentroid normalises the country code and fills missing coordinates
// from the country's centroid. Unusable codes clear the whole location.
func (l Location) withCentroid() Location {
	l.Country = normCountry(l.Country)
	if l.Country == "" {
		return Location{}
	}
	if l.Latitude == 0 && l.Longitude == 0 {
		l.Latitude, l.Longitude, _ = Centroid(l.Country)
	}
	return l
}

// normCountry upper-cases a two-letter code and rejects the placeholders
// CDNs and databases use for "unknown" (XX), Tor (T1) and continents (EU, AP).
func normCountry(cc string) string {
	if len(cc) != 2 {
		return ""
	}
	b := [2]byte{upper(cc[0]), upper(cc[1])}
	if b[0] < 'A' || b[0] > 'Z' || b[1] < 'A' || b[1] > 'Z' {
		return ""
	}
	switch string(b[:]) {
	case "XX", "T1", "EU", "AP", "ZZ":
		return ""
	}
	if cc[0] == b[0] && cc[1] == b[1] {
		return cc
	}
	return string(b[:])
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
