package queryparams

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Breakdown pages.
const (
	DefaultLimit = 10
	maxPage      = 1_000_000
)

// Params is a parsed analytics request.
type Params struct {
	Range
	// Query covers Range.From..To with the request's filters.
	Query store.Query
	// Interval is the requested time series interval, or the period's
	// default.
	Interval store.Interval
	// Limit and Page select a breakdown page (Page counts from 1).
	Limit, Page int
}

// Offset is the number of breakdown rows before the page.
func (p Params) Offset() int { return (p.Page - 1) * p.Limit }

// Previous returns the query of the comparison period.
func (p Params) Previous() store.Query {
	q := p.Query
	q.From, q.To = p.PrevFrom, p.PrevTo
	return q
}

// Parse reads the query parameters period, from, to, interval, filters,
// limit and page for a site in loc.
func Parse(values url.Values, siteID string, loc *time.Location, now time.Time, retentionDays int) (Params, error) {
	r, err := Resolve(values.Get("period"), values.Get("from"), values.Get("to"), loc, now, retentionDays)
	if err != nil {
		return Params{}, err
	}
	p := Params{Range: r, Interval: r.Interval, Limit: DefaultLimit, Page: 1}

	if v := values.Get("interval"); v != "" {
		p.Interval = store.Interval(v)
		if err := p.Interval.Validate(); err != nil {
			return Params{}, invalid("unknown interval %q (want minute, hour, day or month)", v)
		}
	}
	if v := values.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxLimit {
			return Params{}, invalid("limit: want a number from 1 to %d, got %q", store.MaxLimit, v)
		}
		p.Limit = n
	}
	if v := values.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return Params{}, invalid("page: want a number from 1, got %q", v)
		}
		p.Page = n
	}
	filters, err := ParseFilters(values.Get("filters"))
	if err != nil {
		return Params{}, err
	}
	p.Query = store.Query{SiteID: siteID, From: r.From, To: r.To, Location: loc, Filters: filters}
	if err := p.Query.Validate(); err != nil {
		return Params{}, fromStore(err)
	}
	if _, err := store.NewBuckets(p.Query, p.Interval); err != nil {
		return Params{}, fromStore(err)
	}
	return p, nil
}

// ParseFilters reads the filters parameter in either of its two forms:
//
// JSON, an array of [dimension, operator, value] triples, where value is a
// string or an array of strings:
//
//	[["country","is","DE|FR"],["page","contains","/blog"],["event_prop:plan","is",["pro","team"]]]
//
// Compact, the same triples as dimension==value (is), dimension!=value
// (is_not) or dimension~=value (contains), separated by ";":
//
//	country==DE|FR;page~=/blog;event_prop:plan==pro|team
//
// In string values (both forms), "|" separates alternatives (any of them;
// none of them for is_not) and a backslash makes the next character literal:
// "\|", "\;", "\\".
func ParseFilters(s string) ([]store.Filter, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var filters []store.Filter
	if strings.HasPrefix(s, "[") {
		var triples [][]json.RawMessage
		if err := json.Unmarshal([]byte(s), &triples); err != nil {
			return nil, invalid("filters: not a JSON array of [dimension, operator, value] triples: %v", err)
		}
		for i, t := range triples {
			f, err := jsonFilter(t)
			if err != nil {
				return nil, invalid("filters[%d]: %v", i, err)
			}
			filters = append(filters, f)
		}
	} else {
		for _, part := range splitUnescaped(s, ';') {
			if strings.TrimSpace(part) == "" {
				continue
			}
			f, err := compactFilter(part)
			if err != nil {
				return nil, invalid("filters: %q: %v", part, err)
			}
			filters = append(filters, f)
		}
	}
	if len(filters) > store.MaxFilters {
		return nil, invalid("filters: at most %d", store.MaxFilters)
	}
	for _, f := range filters {
		if err := f.Validate(); err != nil {
			return nil, fromStore(err)
		}
	}
	return filters, nil
}

// fromStore rewraps a store validation error as ErrInvalid.
func fromStore(err error) error {
	return invalid("%s", strings.TrimPrefix(err.Error(), store.ErrInvalidQuery.Error()+": "))
}

func jsonFilter(t []json.RawMessage) (store.Filter, error) {
	if len(t) != 3 {
		return store.Filter{}, errors.New("want [dimension, operator, value]")
	}
	var dim, op string
	if json.Unmarshal(t[0], &dim) != nil || json.Unmarshal(t[1], &op) != nil {
		return store.Filter{}, errors.New("dimension and operator must be strings")
	}
	f := store.Filter{Dimension: store.Dimension(dim), Op: store.Op(op)}
	errValue := errors.New("value must be a string or an array of strings")
	var one string
	if isJSONString(t[2]) && json.Unmarshal(t[2], &one) == nil {
		f.Values = splitValues(one)
		return f, nil
	}
	var many []json.RawMessage
	if string(t[2]) == "null" || json.Unmarshal(t[2], &many) != nil {
		return store.Filter{}, errValue
	}
	for _, raw := range many {
		if !isJSONString(raw) || json.Unmarshal(raw, &one) != nil {
			return store.Filter{}, errValue
		}
		f.Values = append(f.Values, one)
	}
	return f, nil
}

// isJSONString rejects null, which json.Unmarshal would turn into "".
func isJSONString(raw json.RawMessage) bool {
	return len(raw) > 0 && raw[0] == '"'
}

var compactOps = []struct {
	token string
	op    store.Op
}{{"==", store.OpIs}, {"!=", store.OpIsNot}, {"~=", store.OpContains}}

func compactFilter(s string) (store.Filter, error) {
	at, width := -1, 0
	var op store.Op
	for _, c := range compactOps {
		if i := strings.Index(s, c.token); i >= 0 && (at < 0 || i < at) {
			at, width, op = i, len(c.token), c.op
		}
	}
	if at < 0 {
		return store.Filter{}, errors.New("want dimension==value, dimension!=value or dimension~=value")
	}
	return store.Filter{
		Dimension: store.Dimension(strings.TrimSpace(s[:at])),
		Op:        op,
		Values:    splitValues(s[at+width:]),
	}, nil
}

// splitUnescaped splits s at each sep not preceded by a backslash, keeping
// the escapes for splitValues.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// splitValues splits at unescaped "|" and resolves the escapes.
func splitValues(s string) []string {
	var values []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '|':
			values = append(values, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(values, cur.String())
}
