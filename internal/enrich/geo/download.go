package geo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Source is a database published as an npm package tarball.
type Source struct {
	URL       string // the tarball
	Integrity string // npm's dist.integrity of the tarball ("sha512-…")
	File      string // the database's path inside the tarball
}

// Country is the CC0 country database that scripts/geo.sh embeds: the same
// version, so every way of building locates visitors alike.
var Country = Source{
	URL:       "https://registry.npmjs.org/@ip-location-db/geo-whois-asn-country-mmdb/-/geo-whois-asn-country-mmdb-2.3.2026061719.tgz",
	Integrity: "sha512-xemBDNQl4mCYDuVbqe3jKGKsVDykZGkfvebhtOh/3VGLadq8vsp7t7ontpMUt3hH7sAGT0eLDyJ99SV+0waxZg==",
	File:      "package/geo-whois-asn-country.mmdb",
}

// maxDownload bounds the tarball (the country one is about 4 MB).
const maxDownload = 128 << 20

// Download fetches src's tarball, checks its integrity, and writes the
// database in it to dest (directories created, replaced atomically, so a
// reader never sees half a file). The database must open before it is kept.
func Download(ctx context.Context, client *http.Client, src Source, dest string) error {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return fmt.Errorf("geo: download: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("geo: download: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("geo: download %s: %s", src.URL, res.Status)
	}
	tgz, err := io.ReadAll(io.LimitReader(res.Body, maxDownload+1))
	if err != nil {
		return fmt.Errorf("geo: download: %w", err)
	}
	if len(tgz) > maxDownload {
		return fmt.Errorf("geo: download %s: larger than %d bytes", src.URL, maxDownload)
	}
	sum := sha512.Sum512(tgz)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != src.Integrity {
		return fmt.Errorf("geo: download %s: integrity %s, want %s", src.URL, got, src.Integrity)
	}

	data, err := extract(tgz, src.File)
	if err != nil {
		return fmt.Errorf("geo: download %s: %w", src.URL, err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return fmt.Errorf("geo: download %s: %w", src.URL, err)
	}
	r.Close()

	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

// extract returns the file called name in a gzipped tarball.
func extract(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s is not in the tarball", name)
		}
		if err != nil {
			return nil, err
		}
		if h.Name == name && h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, maxDownload))
		}
	}
}
