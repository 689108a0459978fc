package enrich

import (
	"cmp"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/pocketlytics/pocketlytics/internal/hit"
)

// Length caps, in bytes, cut on a rune boundary.
const (
	maxHost = 253 // longest DNS name
	maxPath = 2048
	maxUTM  = 256
)

// clickIDs are query parameters that ad networks add to ad clicks only, so
// their presence marks paid traffic. fbclid is deliberately absent: Meta
// adds it to organic outbound links too.
var clickIDs = []string{
	"gclid", "gbraid", "wbraid", "dclid", // Google Ads, Display & Video 360
	"msclkid",   // Microsoft Advertising
	"ttclid",    // TikTok Ads
	"twclid",    // X Ads
	"li_fat_id", // LinkedIn Ads
	"yclid",     // Yandex Direct
}

// stepPage takes the hostname, pathname and UTM parameters from the URL.
// The hostname is lower case and keeps "www."; the pathname drops the query
// and fragment, is percent-decoded when that is valid UTF-8, and is capped.
// utm_source falls back to the ref or source parameters. A page that routes
// by its fragment (hit.Body.Hash) keeps a "#/…" fragment in the pathname.
func stepPage(p *Pipeline, s *state) string {
	u, ok := splitURL(s.in.Hit.URL)
	if !ok || u.host == "" {
		return DropInvalidURL
	}
	s.ev.Hostname = u.host
	path := u.path
	if s.in.Hit.Hash {
		if _, frag, ok := strings.Cut(s.in.Hit.URL, "#"); ok && strings.HasPrefix(frag, "/") {
			frag, _, _ = strings.Cut(frag, "?") // a route's query, as the page's
			path = cmp.Or(path, "/") + "#" + frag
		}
	}
	s.ev.Pathname = cleanPath(path)
	s.query = u.query
	parseQuery(s)
	return ""
}

type urlParts struct {
	host, path, query string
}

// splitURL splits an absolute URL without net/url's allocations. The host
// is lower-cased, without user info, port or a trailing dot.
func splitURL(raw string) (urlParts, bool) {
	var u urlParts
	i := strings.Index(raw, "://")
	if i <= 0 {
		return u, false
	}
	scheme := raw[:i]
	for j := 0; j < len(scheme); j++ {
		c := scheme[j]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return u, false
		}
	}
	rest := raw[i+3:]
	if f := strings.IndexByte(rest, '#'); f >= 0 {
		rest = rest[:f]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest, u.query = rest[:q], rest[q+1:]
	}
	authority := rest
	if sl := strings.IndexByte(rest, '/'); sl >= 0 {
		authority, u.path = rest[:sl], rest[sl:]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = authority[at+1:]
	}
	u.host = hostname(authority)
	if u.host == "" && authority != "" {
		return u, false
	}
	return u, true
}

// hostname strips the port (and IPv6 brackets) from an authority, checks it
// holds only host name characters and lower-cases it.
func hostname(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return ""
		}
		h = h[1:end]
	} else if c := strings.LastIndexByte(h, ':'); c >= 0 {
		h = h[:c]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > maxHost {
		return ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`/\?#@%"<>`, c) >= 0 {
			return ""
		}
	}
	if !utf8.ValidString(h) {
		return ""
	}
	return strings.ToLower(h)
}

// cleanPath decodes and caps a URL path; "" becomes "/".
func cleanPath(path string) string {
	if path == "" {
		return "/"
	}
	if strings.IndexByte(path, '%') >= 0 {
		if d, err := url.PathUnescape(path); err == nil && utf8.ValidString(d) {
			path = d
		}
	}
	return truncate(path, maxPath)
}

// parseQuery reads the UTM parameters and click ids from s.query.
func parseQuery(s *state) {
	var source, ref string
	q := s.query
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		key, val, _ := strings.Cut(kv, "=")
		switch key {
		case "utm_source":
			source = val
		case "utm_medium":
			s.ev.UTMMedium = queryValue(val)
		case "utm_campaign":
			s.ev.UTMCampaign = queryValue(val)
		case "utm_term":
			s.ev.UTMTerm = queryValue(val)
		case "utm_content":
			s.ev.UTMContent = queryValue(val)
		case "ref", "source":
			if ref == "" {
				ref = val
			}
		default:
			if !s.paid && isClickID(key) {
				s.paid = true
			}
		}
	}
	if s.ev.UTMSource = queryValue(source); s.ev.UTMSource == "" {
		s.ev.UTMSource = queryValue(ref)
	}
}

func isClickID(key string) bool {
	for _, id := range clickIDs {
		if key == id {
			return true
		}
	}
	return false
}

// queryValue decodes, trims and caps a query parameter value.
func queryValue(v string) string {
	if v == "" {
		return ""
	}
	if strings.ContainsAny(v, "%+") {
		d, err := url.QueryUnescape(v)
		if err != nil {
			return ""
		}
		v = d
	}
	return truncate(strings.TrimSpace(v), maxUTM)
}

// truncate caps s at n bytes on a rune boundary, repairs invalid UTF-8 and
// drops control characters (hit.Clean).
func truncate(s string, n int) string {
	s = hit.Clean(s)
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	return s
}
