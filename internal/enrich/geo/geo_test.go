package geo_test

import (
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"strings"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/enrich/geo"
	"github.com/pocketlytics/pocketlytics/internal/enrich/geo/geotest"
)

var entries = []geotest.Entry{
	{Network: "192.0.2.0/24", Country: "GB", Region: "England", City: "London", Latitude: 51.5142, Longitude: -0.0931},
	{Network: "2001:db8:1::/48", Country: "de", Region: "Berlin", City: "Berlin", Latitude: 52.52, Longitude: 13.405},
	{Network: "198.51.100.0/24", Country: "XX"},
}

func TestLookupLayouts(t *testing.T) {
	london := geo.Location{Country: "GB", Region: "England", City: "London", Latitude: 51.5142, Longitude: -0.0931}
	berlin := geo.Location{Country: "DE", Region: "Berlin", City: "Berlin", Latitude: 52.52, Longitude: 13.405}
	gbCentroid := centroid(t, "GB")
	deCentroid := centroid(t, "DE")

	layouts := []struct {
		name           string
		layout         geotest.Layout
		london, berlin geo.Location
		float32Coords  bool
	}{
		{"GeoIP2 City", geotest.GeoIP2City, london, berlin, false},
		{"GeoIP2 Country", geotest.GeoIP2Country, gbCentroid, deCentroid, false},
		{"ip-location-db city", geotest.IPLocationCity, london, berlin, true},
		{"ip-location-db country", geotest.IPLocationCountry, gbCentroid, deCentroid, false},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			db, err := geo.Open(geotest.Write(t, l.layout, entries...))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })

			cases := []struct {
				ip   string
				want geo.Location
			}{
				{"192.0.2.55", l.london},
				{"::ffff:192.0.2.55", l.london},
				{"2001:db8:1::7", l.berlin},
				{"fd00::7", geo.Location{}},      // private: in neither database
				{"198.51.100.1", geo.Location{}}, // "XX" means unknown
				{"10.9.9.9", geo.Location{}},     // in neither this nor the embedded database
				{"", geo.Location{}},             // invalid address
			}
			for _, c := range cases {
				var ip netip.Addr
				if c.ip != "" {
					ip = netip.MustParseAddr(c.ip)
				}
				got := db.Lookup(ip)
				if l.float32Coords {
					got.Latitude, got.Longitude = round4(got.Latitude), round4(got.Longitude)
				}
				if got != c.want {
					t.Errorf("Lookup(%q) = %+v, want %+v", c.ip, got, c.want)
				}
			}
		})
	}
}

func TestEmbedded(t *testing.T) {
	db, err := geo.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := db.Lookup(netip.MustParseAddr("8.8.8.8"))
	if !builtWithDB() {
		// Built without scripts/geo.sh: geo is off, not broken.
		if got != (geo.Location{}) {
			t.Fatalf("without the embedded database Lookup = %+v, want zero", got)
		}
		return
	}
	if got.Country != "US" || got.Latitude == 0 {
		t.Fatalf("Lookup(8.8.8.8) = %+v, want US with centroid coordinates", got)
	}
	if got := db.Lookup(netip.MustParseAddr("2a00:1450:4001:80b::200e")); got.Country == "" {
		t.Fatalf("IPv6 lookup found no country")
	}
	if got := db.Lookup(netip.MustParseAddr("10.1.2.3")); got != (geo.Location{}) {
		t.Fatalf("private address located: %+v", got)
	}
}

// A configured database that covers only some addresses (the IPv4 file of
// a city database) leaves the others to the embedded country database.
func TestOpenFallsBackToEmbedded(t *testing.T) {
	db, err := geo.Open(geotest.Write(t, geotest.IPLocationCity, entries[0]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if got := db.Lookup(netip.MustParseAddr("192.0.2.55")); got.City != "London" {
		t.Errorf("Lookup in the configured database = %+v, want London", got)
	}
	got := db.Lookup(netip.MustParseAddr("2a00:1450:4001:80b::200e"))
	if !builtWithDB() {
		if got != (geo.Location{}) {
			t.Fatalf("without the embedded database Lookup = %+v, want zero", got)
		}
		return
	}
	if got.Country == "" || got.City != "" {
		t.Errorf("Lookup outside the configured database = %+v, want the embedded country only", got)
	}
}

func TestOpenMissingFile(t *testing.T) {
	if _, err := geo.Open(t.TempDir() + "/nope.mmdb"); err == nil {
		t.Fatal("want an error for a missing database file")
	}
}

func TestHeaders(t *testing.T) {
	all := []string{geo.Cloudflare, geo.Vercel, geo.CloudFront}
	cases := []struct {
		name    string
		trusted []string
		header  map[string]string
		want    geo.Location
		ok      bool
	}{
		{
			name:    "cloudflare full",
			trusted: []string{"cloudflare"},
			header: map[string]string{
				"cf-ipcountry": "gb", "cf-region": "England", "cf-region-code": "ENG",
				"cf-ipcity": "London", "cf-iplatitude": "51.5", "cf-iplongitude": "-0.12",
			},
			want: geo.Location{Country: "GB", Region: "England", City: "London", Latitude: 51.5, Longitude: -0.12},
			ok:   true,
		},
		{
			name:    "cloudflare country only gets the centroid",
			trusted: []string{"Cloudflare"},
			header:  map[string]string{"CF-IPCountry": "FR"},
			want:    centroid(t, "FR"),
			ok:      true,
		},
		{
			name:    "cloudflare region code when no name",
			trusted: all,
			header:  map[string]string{"cf-ipcountry": "US", "cf-region-code": "TX", "cf-iplatitude": "30.2", "cf-iplongitude": "-97.7"},
			want:    geo.Location{Country: "US", Region: "TX", Latitude: 30.2, Longitude: -97.7},
			ok:      true,
		},
		{
			name:    "cloudflare unknown and tor",
			trusted: all,
			header:  map[string]string{"cf-ipcountry": "XX"},
		},
		{
			name:    "tor",
			trusted: all,
			header:  map[string]string{"cf-ipcountry": "T1"},
		},
		{
			name:    "vercel decodes the city",
			trusted: []string{"vercel"},
			header: map[string]string{
				"x-vercel-ip-country": "DE", "x-vercel-ip-country-region": "BY",
				"x-vercel-ip-city": "M%C3%BCnchen", "x-vercel-ip-latitude": "48.137", "x-vercel-ip-longitude": "11.575",
			},
			want: geo.Location{Country: "DE", Region: "BY", City: "München", Latitude: 48.137, Longitude: 11.575},
			ok:   true,
		},
		{
			name:    "cloudfront prefers the region name",
			trusted: []string{"cloudfront"},
			header: map[string]string{
				"cloudfront-viewer-country": "JP", "cloudfront-viewer-country-region": "13",
				"cloudfront-viewer-country-region-name": "Tokyo", "cloudfront-viewer-city": "Tokyo",
				"cloudfront-viewer-latitude": "35.68", "cloudfront-viewer-longitude": "139.69",
			},
			want: geo.Location{Country: "JP", Region: "Tokyo", City: "Tokyo", Latitude: 35.68, Longitude: 139.69},
			ok:   true,
		},
		{
			name:    "bad coordinates fall back to the centroid",
			trusted: []string{"cloudfront"},
			header:  map[string]string{"cloudfront-viewer-country": "JP", "cloudfront-viewer-latitude": "135.68", "cloudfront-viewer-longitude": "x"},
			want:    centroid(t, "JP"),
			ok:      true,
		},
		{
			name:    "untrusted CDN headers are ignored",
			trusted: []string{"vercel"},
			header:  map[string]string{"cf-ipcountry": "GB", "cf-ipcity": "London"},
		},
		{
			name:    "nothing trusted",
			trusted: nil,
			header:  map[string]string{"cf-ipcountry": "GB"},
		},
		{
			name:    "long city is capped on a rune boundary",
			trusted: []string{"cloudflare"},
			header:  map[string]string{"cf-ipcountry": "GB", "cf-ipcity": strings.Repeat("é", 100)},
			want:    withCity(centroid(t, "GB"), strings.Repeat("é", 64)),
			ok:      true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs, err := geo.NewHeaders(c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			for k, v := range c.header {
				h.Set(k, v)
			}
			got, ok := hs.Lookup(h)
			if ok != c.ok || got != c.want {
				t.Fatalf("Lookup = %+v, %v; want %+v, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestNewHeadersUnknownCDN(t *testing.T) {
	if _, err := geo.NewHeaders([]string{"cloudflare", "akamai"}); err == nil || !strings.Contains(err.Error(), "akamai") {
		t.Fatalf("err = %v, want one naming akamai", err)
	}
}

func TestCentroids(t *testing.T) {
	// Every ISO 3166-1 code in the tz database's table must have a centroid.
	codes := []string{"US", "GB", "DE", "SS", "CW", "XK", "AQ", "UM"}
	if data, err := os.ReadFile("/usr/share/zoneinfo/iso3166.tab"); err == nil {
		codes = codes[:0]
		for _, line := range strings.Split(string(data), "\n") {
			if line != "" && line[0] != '#' {
				codes = append(codes, line[:2])
			}
		}
	}
	for _, cc := range codes {
		lat, lon, ok := geo.Centroid(cc)
		if !ok {
			t.Errorf("no centroid for %s", cc)
			continue
		}
		if lat < -90 || lat > 90 || lon < -180 || lon > 180 || (lat == 0 && lon == 0) {
			t.Errorf("centroid of %s out of range: %v, %v", cc, lat, lon)
		}
	}
}

func TestHeaderKeysCanonical(t *testing.T) {
	// Lookup indexes http.Header directly, so a request's header must be found
	// whatever case the CDN used.
	hs, _ := geo.NewHeaders([]string{"cloudflare"})
	h := http.Header{}
	h[textproto.CanonicalMIMEHeaderKey("CF-IPCOUNTRY")] = []string{"NL"}
	if loc, ok := hs.Lookup(h); !ok || loc.Country != "NL" {
		t.Fatalf("Lookup = %+v, %v", loc, ok)
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, l := range []struct {
		name   string
		layout geotest.Layout
	}{{"GeoIP2City", geotest.GeoIP2City}, {"IPLocationCountry", geotest.IPLocationCountry}} {
		b.Run(l.name, func(b *testing.B) {
			db, err := geo.Open(geotest.Write(b, l.layout, entries...))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ip := netip.MustParseAddr("192.0.2.55")
			b.ReportAllocs()
			for b.Loop() {
				if db.Lookup(ip).Country == "" {
					b.Fatal("not found")
				}
			}
		})
	}
	b.Run("Embedded", func(b *testing.B) {
		db, _ := geo.Open("")
		defer db.Close()
		ip := netip.MustParseAddr("81.2.69.142")
		b.ReportAllocs()
		for b.Loop() {
			db.Lookup(ip)
		}
	})
}

func centroid(t *testing.T, cc string) geo.Location {
	t.Helper()
	lat, lon, ok := geo.Centroid(cc)
	if !ok {
		t.Fatalf("no centroid for %s", cc)
	}
	return geo.Location{Country: cc, Latitude: lat, Longitude: lon}
}

func withCity(l geo.Location, city string) geo.Location {
	l.City = city
	return l
}

func round4(f float64) float64 {
	if f < 0 {
		return -round4(-f)
	}
	return float64(int64(f*10000+0.5)) / 10000
}

func TestLocate(t *testing.T) {
	db, err := geo.Open(geotest.Write(t, geotest.GeoIP2City, entries...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cf, _ := geo.NewHeaders([]string{"cloudflare"})
	london := geo.Location{Country: "GB", Region: "England", City: "London", Latitude: 51.5142, Longitude: -0.0931}

	cases := []struct {
		name   string
		hs     geo.Headers
		header map[string]string
		ip     string
		want   geo.Location
	}{
		{"no trusted headers: the database", geo.Headers{}, map[string]string{"cf-ipcountry": "FR"}, "192.0.2.1", london},
		{"country-only header agreeing with the database", cf, map[string]string{"cf-ipcountry": "GB"}, "192.0.2.1", london},
		{"header disagreeing with the database wins alone", cf, map[string]string{"cf-ipcountry": "FR"}, "192.0.2.1", centroid(t, "FR")},
		{"complete header ignores the database", cf, map[string]string{
			"cf-ipcountry": "GB", "cf-region": "Scotland", "cf-ipcity": "Edinburgh", "cf-iplatitude": "55.95", "cf-iplongitude": "-3.19",
		}, "192.0.2.1", geo.Location{Country: "GB", Region: "Scotland", City: "Edinburgh", Latitude: 55.95, Longitude: -3.19}},
		{"another city in the header takes nothing from the database", cf, map[string]string{"cf-ipcountry": "GB", "cf-ipcity": "Leeds"}, "192.0.2.1",
			withCity(centroid(t, "GB"), "Leeds")},
		{"same city in the header gets the database's coordinates", cf, map[string]string{"cf-ipcountry": "GB", "cf-ipcity": "London"}, "192.0.2.1", london},
		{"unusable header country: the database", cf, map[string]string{"cf-ipcountry": "XX"}, "2001:db8:1::1",
			geo.Location{Country: "DE", Region: "Berlin", City: "Berlin", Latitude: 52.52, Longitude: 13.405}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.header {
				h.Set(k, v)
			}
			if got := geo.Locate(db, c.hs, h, netip.MustParseAddr(c.ip)); got != c.want {
				t.Fatalf("Locate = %+v, want %+v", got, c.want)
			}
		})
	}
}

// builtWithDB reports whether scripts/geo.sh fetched the database and wrote
// the file that embeds it.
func builtWithDB() bool {
	for _, name := range []string{"data/country.mmdb", "embedded_db.go"} {
		if _, err := os.Stat(name); err != nil {
			return false
		}
	}
	return true
}
