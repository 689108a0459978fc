// Package geotest writes small MaxMind-format databases for tests, in the
// record layouts that package geo reads.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Layout is a database record layout.
type Layout int

const (
	// GeoIP2City is GeoLite2/GeoIP2 City and DB-IP City Lite: nested maps
	// with localized names.
	GeoIP2City Layout = iota
	// GeoIP2Country is GeoLite2/GeoIP2 Country: country.iso_code only.
	GeoIP2Country
	// IPLocationCity is ip-location-db's flat city layout (country_code,
	// state1, city, latitude, longitude).
	IPLocationCity
	// IPLocationCountry is ip-location-db's country layout (country_code),
	// the one the binary embeds.
	IPLocationCountry
)

// Entry is one network and its location.
type Entry struct {
	Network   string // CIDR, IPv4 or IPv6
	Country   string
	Region    string
	City      string
	Latitude  float64
	Longitude float64
}

// Write builds a database with entries in layout under t.TempDir and
// returns its path. Reserved networks (documentation ranges) are allowed.
func Write(t testing.TB, layout Layout, entries ...Entry) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "pocketlytics-test",
		IncludeReservedNetworks: true,
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		_, network, err := net.ParseCIDR(e.Network)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, record(layout, e)); err != nil {
			t.Fatalf("insert %s: %v", e.Network, err)
		}
	}
	path := filepath.Join(t.TempDir(), "test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func record(layout Layout, e Entry) mmdbtype.Map {
	names := func(s string) mmdbtype.Map {
		return mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(s), "de": mmdbtype.String(s + " (de)")}}
	}
	switch layout {
	case GeoIP2City:
		m := mmdbtype.Map{
			"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148)},
			"country": mmdbtype.Map{
				"iso_code":   mmdbtype.String(e.Country),
				"geoname_id": mmdbtype.Uint32(1),
				"names":      names(e.Country)["names"],
			},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(e.Country)},
			"location": mmdbtype.Map{
				"accuracy_radius": mmdbtype.Uint16(20),
				"latitude":        mmdbtype.Float64(e.Latitude),
				"longitude":       mmdbtype.Float64(e.Longitude),
				"time_zone":       mmdbtype.String("Europe/London"),
			},
			"postal": mmdbtype.Map{"code": mmdbtype.String("EC1")},
		}
		if e.City != "" {
			m["city"] = names(e.City)
		}
		if e.Region != "" {
			m["subdivisions"] = mmdbtype.Slice{
				mmdbtype.Map{"iso_code": mmdbtype.String("R1"), "names": names(e.Region)["names"]},
				mmdbtype.Map{"iso_code": mmdbtype.String("R2"), "names": names("Smaller " + e.Region)["names"]},
			}
		}
		return m
	case GeoIP2Country:
		return mmdbtype.Map{
			"country":            mmdbtype.Map{"iso_code": mmdbtype.String(e.Country), "names": names(e.Country)["names"]},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(e.Country)},
		}
	case IPLocationCity:
		return mmdbtype.Map{
			"country_code": mmdbtype.String(e.Country),
			"state1":       mmdbtype.String(e.Region),
			"state2":       mmdbtype.String(""),
			"city":         mmdbtype.String(e.City),
			"postcode":     mmdbtype.String(""),
			"latitude":     mmdbtype.Float32(e.Latitude),
			"longitude":    mmdbtype.Float32(e.Longitude),
			"timezone":     mmdbtype.String("Europe/Berlin"),
		}
	default:
		return mmdbtype.Map{"country_code": mmdbtype.String(e.Country)}
	}
}
