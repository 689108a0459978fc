// Package hit parses and validates the body of POST /api/collect: the raw
// hit as the tracker sends it, before enrichment.
//
// The tracker posts JSON, either with fetch (application/json) or with
// navigator.sendBeacon (text/plain, the JSON inside); Parse reads both:
//
//	{"site":"abcdefghijklmno","type":"pageview","url":"https://example.com/a",
//	 "referrer":"https://duckduckgo.com/","title":"A","w":1280}
//	{"site":"abcdefghijklmno","type":"event","url":"https://example.com/a",
//	 "name":"Signup","props":{"plan":"pro","seats":3,"trial":true}}
//	{"site":"abcdefghijklmno","type":"ping","url":"https://example.com/#/a",
//	 "h":1,"e":15000,"s":80}
//
// Unknown fields are ignored, so older servers accept newer trackers.
package hit

import (
	"bytes"
	"encoding/json/jsontext"
	"encoding/json/v2"
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// Limits of a hit. Title is truncated to MaxTitle; every other limit
// rejects the hit.
const (
	MaxBodySize  = 8 << 10  // bytes of the request body
	MaxURL       = 2048     // bytes of url and of referrer
	MaxTitle     = 500      // runes
	MaxName      = 120      // runes of a custom event name
	MaxProps     = 30       // keys of props
	MaxPropKey   = 64       // runes
	MaxPropValue = 256      // runes
	MaxWidth     = 100000   // CSS pixels
	MaxEngaged   = 86400000 // milliseconds of visible time in one ping or leave
	MaxScroll    = 100      // percent
	SiteIDLength = 15       // PocketBase record ids: 15 of [a-z0-9]
)

// Body is the JSON body of POST /api/collect as the tracker sends it,
// validated; package enrich turns it into an event.Event.
type Body struct {
	Site     string            `json:"site"`
	Type     string            `json:"type"` // pageview, event, ping, leave
	URL      string            `json:"url"`
	Referrer string            `json:"referrer"`
	Title    string            `json:"title"`
	Name     string            `json:"name"`  // custom event name
	Props    map[string]string `json:"props"` // scalar values, stringified
	Width    int               `json:"w"`     // viewport width in CSS pixels

	// Revenue of a custom event: millionths of the ISO 4217 Currency
	// (see event.ParseAmount); zero and empty without one.
	RevenueAmount   int64  `json:"-"`
	RevenueCurrency string `json:"-"`

	// Hash says the page routes by its URL fragment: a fragment starting
	// with "#/" is part of the page's path. Sent as "h": 1.
	Hash bool `json:"-"`

	// Engagement, sent with pings and leaves: Engaged is the milliseconds
	// the page was visible since the previous ping, Scroll the deepest point
	// of the page scrolled to, in percent.
	Engaged int `json:"e,omitempty"`
	Scroll  int `json:"s,omitempty"`

	// Host is URL's host name (no port, brackets or user info), found while
	// validating, so the route need not parse the URL again. Not sent.
	Host string `json:"-"`
}

// Error codes.
const (
	CodeInvalidJSON = "invalid_json" // not a JSON object
	CodeInvalidType = "invalid_type" // a field has the wrong JSON type
	CodeRequired    = "required"
	CodeInvalid     = "invalid"
	CodeTooLong     = "too_long"
	CodeTooMany     = "too_many"
	CodeOutOfRange  = "out_of_range"
)

// Error describes why a hit was refused. Field is the JSON name of the
// offending field, or "" when the body as a whole is wrong.
type Error struct {
	Field   string
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// wire is the body as decoded, before validation. Props keep their raw
// JSON so their type can be checked; w is a number so fractions can be
// truncated instead of failing the whole hit.
type wire struct {
	Site     string                    `json:"site"`
	Type     string                    `json:"type"`
	URL      string                    `json:"url"`
	Referrer string                    `json:"referrer"`
	Title    string                    `json:"title"`
	Name     string                    `json:"name"`
	Props    map[string]jsontext.Value `json:"props"`
	Revenue  *struct {
		Amount   jsontext.Value `json:"amount"`
		Currency string         `json:"currency"`
	} `json:"revenue"`
	Width   float64 `json:"w"`
	Hash    float64 `json:"h"`
	Engaged float64 `json:"e"`
	Scroll  float64 `json:"s"`
}

var bom = []byte("\xEF\xBB\xBF")

// Parse decodes and validates a hit. On failure the error is an *Error.
//
// Accepted payloads satisfy: Site has the record id shape; Type is valid;
// URL is an absolute http(s) URL with a host, at most MaxURL bytes;
// Referrer is empty or an absolute URL of at most MaxURL bytes; Title has at
// most MaxTitle runes; Name is set (at most MaxName runes) for events and
// empty otherwise; Props has at most MaxProps non-empty keys, with values
// stringified (numbers, booleans) and nulls left out, nil when empty; Width
// is in [0, MaxWidth], fractions truncated; Hash is sent as 0 or 1; Engaged
// (in [0, MaxEngaged]) and Scroll (in [0, MaxScroll]), fractions truncated,
// are zero unless Type is ping or leave. Every string is valid UTF-8.
func Parse(body []byte) (Body, error) {
	body = bytes.TrimPrefix(body, bom)
	if len(bytes.TrimSpace(body)) == 0 {
		return Body{}, &Error{Code: CodeInvalidJSON, Message: "The body is empty; send the hit as a JSON object."}
	}

	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		return Body{}, decodeError(err)
	}

	p := Body{
		Site:     w.Site,
		Type:     w.Type,
		URL:      w.URL,
		Referrer: w.Referrer,
		Title:    truncate(strings.TrimSpace(Clean(w.Title)), MaxTitle),
	}

	if p.Site == "" {
		return Body{}, &Error{"site", CodeRequired, "The site id is required."}
	}
	if !validSiteID(p.Site) {
		return Body{}, &Error{"site", CodeInvalid, "The site id must be 15 lower-case letters and digits."}
	}

	if p.Type == "" {
		return Body{}, &Error{"type", CodeRequired, "The hit type is required."}
	}
	if !event.ValidType(p.Type) {
		return Body{}, &Error{"type", CodeInvalid, "The hit type must be pageview, event, ping or leave."}
	}

	host, err := checkURL(p.URL)
	if err != nil {
		return Body{}, err
	}
	p.Host = host
	if err := checkReferrer(p.Referrer); err != nil {
		return Body{}, err
	}

	if p.Type == event.Custom {
		p.Name = strings.TrimSpace(Clean(w.Name))
		if p.Name == "" {
			return Body{}, &Error{"name", CodeRequired, "A custom event needs a name."}
		}
		if utf8.RuneCountInString(p.Name) > MaxName {
			return Body{}, &Error{"name", CodeTooLong, "The event name must have at most 120 characters."}
		}
	}

	props, err := parseProps(w.Props)
	if err != nil {
		return Body{}, err
	}
	p.Props = props

	if w.Revenue != nil {
		if p.Type != event.Custom {
			return Body{}, &Error{"revenue", CodeInvalid, "Only custom events carry revenue."}
		}
		if p.RevenueAmount, p.RevenueCurrency, err = parseRevenue(w.Revenue.Amount, w.Revenue.Currency); err != nil {
			return Body{}, err
		}
	}

	if w.Width < 0 || w.Width > MaxWidth {
		return Body{}, &Error{"w", CodeOutOfRange, "The width must be between 0 and 100000."}
	}
	p.Width = int(w.Width)

	if w.Hash != 0 && w.Hash != 1 {
		return Body{}, &Error{"h", CodeInvalid, "The hash flag must be 0 or 1."}
	}
	p.Hash = w.Hash == 1

	if w.Engaged < 0 || w.Engaged > MaxEngaged {
		return Body{}, &Error{"e", CodeOutOfRange, "The engaged time must be between 0 and 86400000 milliseconds."}
	}
	if w.Scroll < 0 || w.Scroll > MaxScroll {
		return Body{}, &Error{"s", CodeOutOfRange, "The scroll depth must be between 0 and 100 percent."}
	}
	p.Engaged, p.Scroll = int(w.Engaged), int(w.Scroll)
	if (p.Engaged != 0 || p.Scroll != 0) && p.Type != event.Ping && p.Type != event.Leave {
		field := "e"
		if p.Engaged == 0 {
			field = "s"
		}
		return Body{}, &Error{field, CodeInvalid, "Only ping and leave hits carry engagement."}
	}

	return p, nil
}

func validSiteID(s string) bool {
	if len(s) != SiteIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// checkURL validates the page url and returns its host name.
func checkURL(s string) (string, error) {
	if s == "" {
		return "", &Error{"url", CodeRequired, "The page url is required."}
	}
	if len(s) > MaxURL {
		return "", &Error{"url", CodeTooLong, "The page url must be at most 2048 bytes."}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return "", &Error{"url", CodeInvalid, "The page url must be an absolute http or https URL."}
	}
	return u.Hostname(), nil
}

func checkReferrer(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxURL {
		return &Error{"referrer", CodeTooLong, "The referrer must be at most 2048 bytes."}
	}
	if u, err := url.Parse(s); err != nil || !u.IsAbs() {
		return &Error{"referrer", CodeInvalid, "The referrer must be an absolute URL or empty."}
	}
	return nil
}

func parseProps(raw map[string]jsontext.Value) (map[string]string, error) {
	if len(raw) > MaxProps {
		return nil, &Error{"props", CodeTooMany, "An event may have at most 30 props."}
	}
	var props map[string]string
	for k, v := range raw {
		if k == "" || utf8.RuneCountInString(k) > MaxPropKey {
			return nil, &Error{"props", CodeInvalid, "Prop names must have 1 to 64 characters."}
		}

		var s string
		switch v.Kind() {
		case 'n':
			continue // null: as if not sent
		case 't':
			s = "true"
		case 'f':
			s = "false"
		case '0':
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return nil, &Error{"props", CodeOutOfRange, "Prop " + strconv.Quote(k) + " is a number out of range."}
			}
			s = formatNumber(f)
		case '"':
			b, err := jsontext.AppendUnquote(nil, v)
			if err != nil {
				return nil, &Error{"props", CodeInvalid, "Prop " + strconv.Quote(k) + " is not a valid string."}
			}
			if utf8.RuneCount(b) > MaxPropValue {
				return nil, &Error{"props", CodeTooLong, "Prop " + strconv.Quote(k) + " must have at most 256 characters."}
			}
			s = string(b)
		default:
			return nil, &Error{"props", CodeInvalidType, "Prop " + strconv.Quote(k) + " must be a string, number, boolean or null, not an object or array."}
		}

		if props == nil {
			props = make(map[string]string, len(raw))
		}
		props[Clean(k)] = Clean(s)
	}
	return props, nil
}

// formatNumber writes integers without exponent or fraction ("3", not
// "3e+00"), so a prop sent as 3 or "3" reads the same.
func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		if f == 0 {
			return "0" // also for -0
		}
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// truncate cuts s to at most n runes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// decodeError turns a decoding error into an *Error naming the field.
func decodeError(err error) *Error {
	var se *json.SemanticError
	if errors.As(err, &se) && se.JSONPointer != "" {
		field := string(se.JSONPointer)[1:]
		if i := strings.IndexByte(field, '/'); i >= 0 {
			field = field[:i]
		}
		want := "a string"
		switch field {
		case "props":
			want = "an object of scalar values"
		case "w", "h", "e", "s":
			want = "a number"
		}
		if se.JSONKind == '0' {
			switch field {
			case "w":
				return &Error{field, CodeOutOfRange, "The width must be between 0 and 100000."}
			case "e":
				return &Error{field, CodeOutOfRange, "The engaged time must be between 0 and 86400000 milliseconds."}
			case "s":
				return &Error{field, CodeOutOfRange, "The scroll depth must be between 0 and 100 percent."}
			case "h":
				return &Error{field, CodeInvalid, "The hash flag must be 0 or 1."}
			}
		}
		return &Error{field, CodeInvalidType, "The field " + strconv.Quote(field) + " must be " + want + "."}
	}
	if errors.As(err, &se) && se.JSONKind != 0 && se.JSONKind != '{' {
		return &Error{Code: CodeInvalidJSON, Message: "The body must be a JSON object."}
	}
	return &Error{Code: CodeInvalidJSON, Message: "The body is not valid JSON: " + jsonReason(err)}
}

// jsonReason is the decoder's message without its package prefix, cut
// short: it may quote parts of the body.
func jsonReason(err error) string {
	msg := err.Error()
	for _, p := range []string{"jsontext: ", "json: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return truncate(msg, 200)
}

// Clean drops control characters from s (NUL, escapes, C1 controls) and
// turns tabs and line breaks into spaces. Applied to every text a hit
// carries, it makes the stores agree: SQLite cuts a text at a NUL where
// ClickHouse keeps it.
func Clean(s string) string {
	i := strings.IndexFunc(s, unicode.IsControl)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// parseRevenue reads an amount (a JSON number or a decimal string, exact to
// a millionth) and an ISO 4217 currency code (letters, either case).
func parseRevenue(amount jsontext.Value, currency string) (int64, string, error) {
	text := string(amount)
	if len(text) >= 2 && text[0] == '"' {
		text = text[1 : len(text)-1]
	}
	m, err := event.ParseAmount(text)
	if err != nil {
		return 0, "", &Error{"revenue", CodeInvalid, "The revenue amount must be a non-negative decimal number like 49.90, at most 6 decimals."}
	}
	currency = strings.ToUpper(currency)
	if !event.ValidCurrency(currency) {
		return 0, "", &Error{"revenue", CodeInvalid, "The revenue currency must be an ISO 4217 code of three letters, like EUR."}
	}
	return m, currency, nil
}
