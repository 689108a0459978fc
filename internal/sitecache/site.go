// Package sitecache keeps the `sites` collection in memory, so the ingest
// route never runs SQL per hit. Record hooks keep it fresh.
//
// Usage:
//
//	sites := sitecache.Register(app)
//	...
//	site, ok := sites.Get(hit.Site)
//	if !ok || !site.AllowsHost(host) { ... }
package sitecache

import "strings"

// Site is the in-memory view of one `sites` record.
type Site struct {
	ID              string
	Name            string
	Domains         []string // host names allowed to send hits, lower case
	AllowSubdomains bool
	Timezone        string // IANA name, "UTC" when unset
	Public          bool
}

// AllowsHost reports whether a hit from a page on host belongs to the site:
// host equals one of its domains or, with AllowSubdomains, is a subdomain of
// one. The comparison ignores case, a trailing dot and a leading "www." on
// either side, so listing example.com also admits www.example.com and the
// other way round.
func (s Site) AllowsHost(host string) bool {
	host = canonicalHost(host)
	if host == "" {
		return false
	}
	for _, d := range s.Domains {
		d = canonicalHost(d)
		if d == "" {
			continue
		}
		if host == d {
			return true
		}
		if s.AllowSubdomains && len(host) > len(d) && host[len(host)-len(d)-1] == '.' && strings.HasSuffix(host, d) {
			return true
		}
	}
	return false
}
