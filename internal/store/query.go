package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Querier answers the analytics API's questions (overview, time series,
// breakdowns). Both implementations must give identical answers for the same
// events; the parity tests hold them to it.
//
// The numbers are defined once, here, for both stores:
//
//   - The rows of a query are the site's events with From <= ts < To.
//   - A visit is a session_id with at least one pageview or custom event among
//     those rows (sessions made of pings only do not count). Its duration is
//     its visible time, the engaged milliseconds of its pings and leaves in
//     whole seconds (rounded down), when it has any; else max(ts)-min(ts) in
//     whole seconds over all its rows. Its start is its first row.
//   - A bounce is a visit with exactly one pageview and no custom event.
//   - Visitors are distinct visitor ids of the counted visits.
//   - Session attributes (source, location, device) are those of the visit's
//     first pageview or custom event; the entry page is the pathname of its
//     first pageview, the exit page that of its last. Rows are ordered by
//     milliseconds (the precision both stores share); ties within one go to
//     the smallest value (entry, attributes) or the largest (exit page).
//
// Filters (all of them must hold) work at two levels, following Plausible:
//
//   - Session dimensions (entry_page, exit_page, referrer, channel, utm_*,
//     country, region, city, device, browser, os) select visits by their
//     attribute; every number is then computed over those whole visits.
//   - Row dimensions (page and hostname, which match pageviews and custom
//     events; event_name and event_prop, which match custom events) select
//     visits that include a matching row ("is"/"contains") or include none
//     ("is_not"). They also restrict the counted pageviews and events to the
//     rows they apply to: with page is /pricing, pageviews counts views of
//     /pricing only, while visitors, visits, bounce rate and visit duration
//     describe the visits that included /pricing.
type Querier interface {
	// Overview returns the headline numbers of q.
	Overview(ctx context.Context, q Query) (Overview, error)

	// Timeseries returns one point per interval bucket of q's range in the
	// site's timezone, empty buckets included. Visitors, pageviews and events
	// count in the bucket where they happened; visits (with their bounce rate
	// and duration) in the bucket where they started.
	Timeseries(ctx context.Context, q Query, interval Interval) ([]Point, error)

	// Breakdown groups q's numbers by a dimension, ordered by visitors
	// (descending), then value, and returns rows [offset, offset+limit) with
	// the total number of distinct values.
	Breakdown(ctx context.Context, q Query, dim Dimension, limit, offset int) (Breakdown, error)

	Funneler
}

// Query selects a site's events in a time range, optionally filtered.
type Query struct {
	SiteID string
	// From and To bound the range, half-open [From, To). They are truncated
	// to whole seconds, the precision both stores share.
	From, To time.Time
	// Location is the site's timezone, used for time buckets (UTC when nil).
	Location *time.Location
	// Filters must all hold (AND).
	Filters []Filter
	// Goals are the site's goals, which the goal dimension and filter read
	// (see goals.go).
	Goals []Goal
}

// Limits on filters, so a request cannot produce an unbounded SQL text.
const (
	MaxFilters     = 20
	MaxValues      = 50
	MaxValueLength = 2000
	MaxPropKey     = 300
	// MaxFilterBytes bounds the bytes of all filter values together, so
	// every accepted query fits both stores' statement limits.
	MaxFilterBytes = 64 << 10
	// MaxLimit is the largest breakdown page.
	MaxLimit = 1000
)

// ErrInvalidQuery wraps every validation error of a Query, so callers can tell
// bad input (a 4xx) from a store failure.
var ErrInvalidQuery = errors.New("invalid query")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidQuery, fmt.Sprintf(format, args...))
}

// Validate checks q and normalizes it: times to whole seconds in UTC, a nil
// Location to UTC.
func (q *Query) Validate() error {
	if q.SiteID == "" {
		return invalid("missing site id")
	}
	q.From = q.From.UTC().Truncate(time.Second)
	q.To = q.To.UTC().Truncate(time.Second)
	if !q.From.Before(q.To) {
		return invalid("the range is empty: from %s is not before to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	// Bucket arithmetic assumes positive local times; ClickHouse's DateTime
	// ends in 2106.
	if q.From.Unix() < 86400 || q.To.Unix() > 1<<32-1 {
		return invalid("the range must lie between 1970-01-02 and 2106")
	}
	if q.Location == nil {
		q.Location = time.UTC
	}
	if len(q.Filters) > MaxFilters {
		return invalid("at most %d filters", MaxFilters)
	}
	size := 0
	for i := range q.Filters {
		if err := q.Filters[i].Validate(); err != nil {
			return err
		}
		for _, v := range q.Filters[i].Values {
			size += len(v)
		}
	}
	if size > MaxFilterBytes {
		return invalid("the filter values add up to more than %d bytes", MaxFilterBytes)
	}
	return q.validateGoals()
}

// ValidatePage checks a breakdown page's limit and offset.
func ValidatePage(limit, offset int) error {
	if limit < 1 || limit > MaxLimit {
		return invalid("limit must be between 1 and %d", MaxLimit)
	}
	if offset < 0 {
		return invalid("offset must not be negative")
	}
	return nil
}

// Filter is one condition on a dimension.
//
// Several Values mean any of them: "is" matches a value equal to one of them,
// "contains" a value containing one of them, and "is_not" a value equal to
// none of them. Values compare exactly (byte for byte, case-sensitive); the
// empty value matches an empty attribute (for example referrer is "" for
// direct visits).
type Filter struct {
	Dimension Dimension
	Op        Op
	Values    []string
}

// Validate checks the filter against the whitelists.
func (f Filter) Validate() error {
	if err := f.Dimension.Validate(); err != nil {
		return err
	}
	switch f.Op {
	case OpIs, OpIsNot, OpContains:
	default:
		return invalid("unknown filter operator %q (want is, is_not or contains)", string(f.Op))
	}
	if len(f.Values) == 0 {
		return invalid("filter on %s has no value", f.Dimension)
	}
	if len(f.Values) > MaxValues {
		return invalid("filter on %s has more than %d values", f.Dimension, MaxValues)
	}
	for _, v := range f.Values {
		if len(v) > MaxValueLength {
			return invalid("filter value on %s is longer than %d bytes", f.Dimension, MaxValueLength)
		}
		if f.Op == OpContains && v == "" {
			return invalid("contains filter on %s needs a non-empty value", f.Dimension)
		}
	}
	return nil
}

// Op is a filter operator.
type Op string

const (
	OpIs       Op = "is"
	OpIsNot    Op = "is_not"
	OpContains Op = "contains"
)

// Negated reports whether the operator excludes what it matches.
func (o Op) Negated() bool { return o == OpIsNot }

// Interval is the width of a time series bucket.
type Interval string

const (
	IntervalMinute Interval = "minute"
	IntervalHour   Interval = "hour"
	IntervalDay    Interval = "day"
	IntervalMonth  Interval = "month"
)

// Validate reports whether i is a known interval.
func (i Interval) Validate() error {
	switch i {
	case IntervalMinute, IntervalHour, IntervalDay, IntervalMonth:
		return nil
	}
	return invalid("unknown interval %q (want minute, hour, day or month)", string(i))
}

// Dimension names what a filter or breakdown looks at. It is one of the
// constants below, or "event_prop:KEY" for the custom event property KEY.
type Dimension string

const (
	DimPage        Dimension = "page"
	DimEntryPage   Dimension = "entry_page"
	DimExitPage    Dimension = "exit_page"
	DimHostname    Dimension = "hostname"
	DimReferrer    Dimension = "referrer"
	DimChannel     Dimension = "channel"
	DimUTMSource   Dimension = "utm_source"
	DimUTMMedium   Dimension = "utm_medium"
	DimUTMCampaign Dimension = "utm_campaign"
	DimUTMTerm     Dimension = "utm_term"
	DimUTMContent  Dimension = "utm_content"
	DimCountry     Dimension = "country"
	DimRegion      Dimension = "region"
	DimCity        Dimension = "city"
	DimDevice      Dimension = "device"
	DimBrowser     Dimension = "browser"
	DimOS          Dimension = "os"
	DimEventName   Dimension = "event_name"
	// DimEventProp is the prefix of property dimensions: "event_prop:plan".
	DimEventProp Dimension = "event_prop"
)

// Level says where a dimension's filter applies.
type Level int

const (
	// LevelSession: an attribute of the whole visit.
	LevelSession Level = iota + 1
	// LevelPage: an attribute of pageviews and custom events.
	LevelPage
	// LevelEvent: an attribute of custom events only.
	LevelEvent
)

// dimensions is the closed whitelist: dimension → events column. The column
// names are the same in both stores' schemas; they are the only identifiers
// the stores splice into SQL.
var dimensions = map[Dimension]struct {
	column string
	level  Level
}{
	DimPage:        {"pathname", LevelPage},
	DimHostname:    {"hostname", LevelPage},
	DimEntryPage:   {"pathname", LevelSession},
	DimExitPage:    {"pathname", LevelSession},
	DimReferrer:    {"referrer_host", LevelSession},
	DimChannel:     {"channel", LevelSession},
	DimUTMSource:   {"utm_source", LevelSession},
	DimUTMMedium:   {"utm_medium", LevelSession},
	DimUTMCampaign: {"utm_campaign", LevelSession},
	DimUTMTerm:     {"utm_term", LevelSession},
	DimUTMContent:  {"utm_content", LevelSession},
	DimCountry:     {"country", LevelSession},
	DimRegion:      {"region", LevelSession},
	DimCity:        {"city", LevelSession},
	DimDevice:      {"device", LevelSession},
	DimBrowser:     {"browser", LevelSession},
	DimOS:          {"os", LevelSession},
	DimEventName:   {"name", LevelEvent},
	DimEventProp:   {"props", LevelEvent},
	DimGoal:        {"", LevelVisit},
}

// DimensionNames lists the accepted dimensions, for error messages and docs.
const DimensionNames = "page, entry_page, exit_page, hostname, referrer, channel, utm_source, utm_medium, " +
	"utm_campaign, utm_term, utm_content, country, region, city, device, browser, os, event_name, event_prop:KEY, goal"

// ParseDimension validates s and returns it as a Dimension.
func ParseDimension(s string) (Dimension, error) {
	d := Dimension(s)
	return d, d.Validate()
}

// PropDimension returns the dimension of the custom event property key.
func PropDimension(key string) Dimension { return DimEventProp + ":" + Dimension(key) }

// Validate reports whether d is on the whitelist.
func (d Dimension) Validate() error {
	base, key, isProp := strings.Cut(string(d), ":")
	if isProp {
		if Dimension(base) != DimEventProp {
			return invalid("unknown dimension %q (want one of %s)", string(d), DimensionNames)
		}
		if key == "" || len(key) > MaxPropKey {
			return invalid("event_prop needs a property key of 1 to %d bytes: event_prop:KEY", MaxPropKey)
		}
		return nil
	}
	if _, ok := dimensions[d]; !ok || d == DimEventProp {
		return invalid("unknown dimension %q (want one of %s)", string(d), DimensionNames)
	}
	return nil
}

// Base returns d without its property key ("event_prop:plan" → "event_prop").
func (d Dimension) Base() Dimension {
	base, _, _ := strings.Cut(string(d), ":")
	return Dimension(base)
}

// PropKey returns the property key of an event_prop dimension, else "".
func (d Dimension) PropKey() string {
	_, key, _ := strings.Cut(string(d), ":")
	return key
}

// Level returns where filters on d apply (0 for an invalid dimension).
func (d Dimension) Level() Level { return dimensions[d.Base()].level }

// VisitColumn returns the visits column of a session dimension ("" for
// the others). The visits table names its columns after the events columns,
// except for the entry and exit pages.
func (d Dimension) VisitColumn() string {
	switch {
	case d == DimEntryPage:
		return "entry_page"
	case d == DimExitPage:
		return "exit_page"
	case d.Level() == LevelSession:
		return d.Column()
	}
	return ""
}

// Column returns the events column behind d ("props" for event_prop; the
// stores read the property through their own representation).
func (d Dimension) Column() string { return dimensions[d.Base()].column }

// Overview holds the headline numbers of a range.
type Overview struct {
	Visitors  int64 `json:"visitors"`
	Visits    int64 `json:"visits"`
	Pageviews int64 `json:"pageviews"`
	Events    int64 `json:"events"`
	// ViewsPerVisit is pageviews per visit, rounded to 2 decimals.
	ViewsPerVisit float64 `json:"viewsPerVisit"`
	// BounceRate is the percentage of visits that bounced, rounded to 1 decimal.
	BounceRate float64 `json:"bounceRate"`
	// VisitDuration is the mean visit duration in seconds, rounded.
	VisitDuration int64 `json:"visitDuration"`
}

// Point is one time series bucket.
type Point struct {
	// Time is the start of the bucket, in the site's timezone.
	Time          time.Time `json:"time"`
	Visitors      int64     `json:"visitors"`
	Visits        int64     `json:"visits"`
	Pageviews     int64     `json:"pageviews"`
	Events        int64     `json:"events"`
	BounceRate    float64   `json:"bounceRate"`
	VisitDuration int64     `json:"visitDuration"`
}

// Row is one value of a breakdown.
//
// For session dimensions, a row describes the visits with that attribute. For
// row dimensions (page, hostname, event_name, event_prop), Visitors and Visits
// count those that had a matching row, Pageviews and Events count the matching
// rows, and BounceRate and VisitDuration describe the visits that had one.
type Row struct {
	Value         string  `json:"value"`
	Visitors      int64   `json:"visitors"`
	Visits        int64   `json:"visits"`
	Pageviews     int64   `json:"pageviews"`
	Events        int64   `json:"events"`
	BounceRate    float64 `json:"bounceRate"`
	VisitDuration int64   `json:"visitDuration"`

	// TimeOnPage and ScrollDepth are set on rows of the page dimension
	// only; see Engagement.
	TimeOnPage  *int64 `json:"timeOnPage,omitempty"`
	ScrollDepth *int64 `json:"scrollDepth,omitempty"`

	// ConversionRate and Revenue are set on goal rows (see goals.go).
	ConversionRate float64   `json:"conversionRate,omitzero"`
	Revenue        []Revenue `json:"revenue,omitempty"`
}

// Engagement sums the pings and leaves on one page among a query's visits
// (those its filters select, all of their rows) that viewed the page or
// sent a custom event from it: the page's visible time and the deepest
// scroll each visit reported there.
type Engagement struct {
	// Engaged is the visible time in milliseconds, summed.
	Engaged int64
	// Depth sums each visit's deepest scroll (percent) over the Reported
	// visits that sent a ping or leave from the page.
	Depth    int64
	Reported int64
}

// SetOn sets r's TimeOnPage, the visible time per visit of the row in
// whole seconds, and ScrollDepth, the mean deepest scroll of the visits that
// reported one, in percent (both rounded; 0 without data).
func (e Engagement) SetOn(r *Row) {
	var top, depth int64
	if r.Visits > 0 {
		top = int64(round(float64(e.Engaged)/1000/float64(r.Visits), 1))
	}
	if e.Reported > 0 {
		depth = int64(round(float64(e.Depth)/float64(e.Reported), 1))
	}
	r.TimeOnPage, r.ScrollDepth = &top, &depth
}

// Breakdown is one page of a breakdown.
type Breakdown struct {
	Rows []Row
	// Total is the number of distinct values (rows over all pages).
	Total int
}

// Totals are the additive sums both stores compute; the derived ratios are
// computed from them in Go, so the stores cannot disagree on rounding.
type Totals struct {
	Visitors  int64
	Visits    int64
	Pageviews int64
	Events    int64
	Bounces   int64
	// Duration is the sum of visit durations in seconds.
	Duration int64
}

// Overview derives the overview numbers.
func (t Totals) Overview() Overview {
	o := Overview{Visitors: t.Visitors, Visits: t.Visits, Pageviews: t.Pageviews, Events: t.Events}
	o.ViewsPerVisit, o.BounceRate, o.VisitDuration = t.ratios()
	return o
}

// Row derives a breakdown row.
func (t Totals) Row(value string) Row {
	r := Row{Value: value, Visitors: t.Visitors, Visits: t.Visits, Pageviews: t.Pageviews, Events: t.Events}
	_, r.BounceRate, r.VisitDuration = t.ratios()
	return r
}

// Point derives a time series point.
func (t Totals) Point(at time.Time) Point {
	p := Point{Time: at, Visitors: t.Visitors, Visits: t.Visits, Pageviews: t.Pageviews, Events: t.Events}
	_, p.BounceRate, p.VisitDuration = t.ratios()
	return p
}

func (t Totals) ratios() (viewsPerVisit, bounceRate float64, duration int64) {
	if t.Visits == 0 {
		return 0, 0, 0
	}
	v := float64(t.Visits)
	return round(float64(t.Pageviews)/v, 100), round(float64(t.Bounces)*100/v, 10), int64(round(float64(t.Duration)/v, 1))
}

func round(x, scale float64) float64 {
	return float64(int64(x*scale+0.5)) / scale
}

// Rollable reports whether a store's per-hour rollups can answer q as its
// rows would: q is valid, has no filters and its range is whole UTC hours
// (so whole hours in every zone whose offset is whole hours).
func (q Query) Rollable() bool {
	return q.Validate() == nil && len(q.Filters) == 0 && q.From.Unix()%3600 == 0 && q.To.Unix()%3600 == 0
}
