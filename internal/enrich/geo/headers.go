package geo

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CDNs whose location headers can be trusted, by the names used in
// Config.GeoHeaders and the GEO_HEADERS setting.
const (
	Cloudflare = "cloudflare"
	Vercel     = "vercel"
	CloudFront = "cloudfront"
)

// cdnHeaders lists each CDN's request headers, in canonical form. Region
// prefers a name (matching the databases' English names) over a code.
//
//	Cloudflare: "IP Geolocation" and "Add visitor location headers" managed transform
//	Vercel:     https://vercel.com/docs/headers/request-headers (city is URL-encoded)
//	CloudFront: CloudFront-Viewer-* headers, enabled per origin request policy
var cdnHeaders = map[string]headerSet{
	Cloudflare: {
		country: "Cf-Ipcountry",
		region:  []string{"Cf-Region", "Cf-Region-Code"},
		city:    "Cf-Ipcity",
		lat:     "Cf-Iplatitude",
		lon:     "Cf-Iplongitude",
	},
	Vercel: {
		country:     "X-Vercel-Ip-Country",
		region:      []string{"X-Vercel-Ip-Country-Region"},
		city:        "X-Vercel-Ip-City",
		lat:         "X-Vercel-Ip-Latitude",
		lon:         "X-Vercel-Ip-Longitude",
		cityEscaped: true,
	},
	CloudFront: {
		country: "Cloudfront-Viewer-Country",
		region:  []string{"Cloudfront-Viewer-Country-Region-Name", "Cloudfront-Viewer-Country-Region"},
		city:    "Cloudfront-Viewer-City",
		lat:     "Cloudfront-Viewer-Latitude",
		lon:     "Cloudfront-Viewer-Longitude",
	},
}

type headerSet struct {
	country, city, lat, lon string
	region                  []string
	cityEscaped             bool // Vercel URL-encodes the city
}

// maxHeaderValue caps the length of a region or city taken from a header.
const maxHeaderValue = 128

// Headers reads the location headers of trusted CDNs. The zero value trusts
// none. Trust a CDN only when every request passes through it: otherwise
// anyone can send these headers.
type Headers struct {
	sets []headerSet
}

// NewHeaders trusts the named CDNs ("cloudflare", "vercel", "cloudfront",
// any case). An unknown name is an error, so a typo does not silently turn
// the feature off.
func NewHeaders(cdns []string) (Headers, error) {
	var hs Headers
	for _, name := range cdns {
		set, ok := cdnHeaders[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return Headers{}, fmt.Errorf("geo: unknown CDN %q in geo headers (want %s, %s or %s)", name, Cloudflare, Vercel, CloudFront)
		}
		hs.sets = append(hs.sets, set)
	}
	return hs, nil
}

// Lookup returns the location in the first trusted CDN's headers that hold a
// usable country code ("XX" and "T1" are not). Missing coordinates fall back
// to the country's centroid.
func (hs Headers) Lookup(h http.Header) (Location, bool) {
	loc, ok := hs.lookup(h)
	return loc.withCentroid(), ok
}

// lookup is Lookup without the centroid fallback.
func (hs Headers) lookup(h http.Header) (Location, bool) {
	for i := range hs.sets {
		set := &hs.sets[i]
		cc := normCountry(first(h, set.country))
		if cc == "" {
			continue
		}
		loc := Location{Country: cc, City: clean(first(h, set.city), set.cityEscaped)}
		for _, key := range set.region {
			if loc.Region = clean(first(h, key), false); loc.Region != "" {
				break
			}
		}
		lat, errLat := strconv.ParseFloat(strings.TrimSpace(first(h, set.lat)), 64)
		lon, errLon := strconv.ParseFloat(strings.TrimSpace(first(h, set.lon)), 64)
		if errLat == nil && errLon == nil && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 {
			loc.Latitude, loc.Longitude = lat, lon
		}
		return loc, true
	}
	return Location{}, false
}

// first returns the first value of a canonical header key without the
// allocation of http.Header.Get's canonicalisation.
func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// clean trims, optionally URL-decodes, caps and repairs a header value.
func clean(v string, escaped bool) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if escaped {
		if d, err := url.QueryUnescape(v); err == nil {
			v = d
		}
	}
	if n := maxHeaderValue; len(v) > n {
		for n > 0 && !utf8.RuneStart(v[n]) {
			n--
		}
		v = v[:n]
	}
	return strings.ToValidUTF8(v, "")
}
