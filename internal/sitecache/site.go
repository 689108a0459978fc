// Package sitecache keeps the `sites` collection in memory, so the ingest
// route never runs SQL per hit. Record hooks keep it fresh.
package sitecache

// Site is the in-memory view of one `sites` record.
type Site struct {
	ID              string
	Name            string
	Domains         []string // host names allowed to send hits, lower case
	AllowSubdomains bool
	Timezone        string // IANA name, "UTC" when unset
	Owner           string
	Members         []string
	Public          bool
}
