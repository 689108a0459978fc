package demo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestCountriesMatchGeoDB checks every demo network against the embedded
// country database, so the demo's visitors land where it says.
func TestCountriesMatchGeoDB(t *testing.T) {
	path := filepath.Join(testutil.ModuleRoot(), "internal", "enrich", "geo", "data", "country.mmdb")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is missing: run scripts/geo.sh", path)
	}
	db, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range countries {
		t.Run(c.code, func(t *testing.T) {
			var rec struct {
				Country string `maxminddb:"country_code"`
			}
			addr := c.net.Addr().Next()
			if err := db.Lookup(addr).Decode(&rec); err != nil {
				t.Fatal(err)
			}
			if rec.Country != c.code {
				t.Errorf("%s is in %q, want %q", addr, rec.Country, c.code)
			}
		})
	}
}
