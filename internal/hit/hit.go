// Package hit parses and validates the body of POST /api/collect: the raw
// hit as the tracker sends it, before enrichment.
package hit

// Payload is one hit as sent by the tracker.
type Payload struct {
	Site     string            `json:"site"`
	Type     string            `json:"type"` // pageview, event, ping, leave
	URL      string            `json:"url"`
	Referrer string            `json:"referrer"`
	Title    string            `json:"title"`
	Name     string            `json:"name"`  // custom event name
	Props    map[string]string `json:"props"` // scalar values, stringified
	Width    int               `json:"w"`     // viewport width in CSS pixels
}
