package geo_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/enrich/geo"
	"github.com/pocketlytics/pocketlytics/internal/enrich/geo/geotest"
)

// npmTarball packs file as package/NAME, as npm does.
func npmTarball(t *testing.T, name string, file []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	readme := []byte("# db\n")
	for _, f := range []struct {
		name string
		body []byte
	}{{"package/README.md", readme}, {"package/" + name, file}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func integrity(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestDownload(t *testing.T) {
	db, err := os.ReadFile(geotest.Write(t, geotest.IPLocationCountry, geotest.Entry{Network: "81.2.69.0/24", Country: "GB"}))
	if err != nil {
		t.Fatal(err)
	}
	tgz := npmTarball(t, "country.mmdb", db)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(tgz) }))
	defer srv.Close()
	src := geo.Source{URL: srv.URL + "/db.tgz", Integrity: integrity(tgz), File: "package/country.mmdb"}

	t.Run("writes the database, which then locates", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "geoip", "country.mmdb")
		if err := geo.Download(context.Background(), srv.Client(), src, dest); err != nil {
			t.Fatal(err)
		}
		d := &geo.DB{}
		if d.Loaded() {
			t.Fatal("an empty DB reports Loaded")
		}
		if err := d.Load(dest); err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if loc := d.Lookup(netip.MustParseAddr("81.2.69.142")); loc.Country != "GB" {
			t.Fatalf("Lookup = %+v", loc)
		}
	})

	for _, tc := range []struct {
		name string
		src  geo.Source
		want string
	}{
		{"wrong integrity", geo.Source{URL: src.URL, Integrity: integrity([]byte("x")), File: src.File}, "integrity"},
		{"file not in the tarball", geo.Source{URL: src.URL, Integrity: src.Integrity, File: "package/other.mmdb"}, "not in the tarball"},
		{"not found", geo.Source{URL: srv.URL + "/missing", Integrity: src.Integrity, File: src.File}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "not found" {
				srv404 := httptest.NewServer(http.NotFoundHandler())
				defer srv404.Close()
				tc.src.URL = srv404.URL
			}
			dest := filepath.Join(t.TempDir(), "country.mmdb")
			err := geo.Download(context.Background(), srv.Client(), tc.src, dest)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Fatal("a failed download left a file")
			}
		})
	}
}
