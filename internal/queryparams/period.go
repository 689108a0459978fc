// Package queryparams turns the analytics API's query parameters (period,
// from/to, interval, filters, limit, page) into store queries: it resolves
// named periods in a site's timezone, picks the comparison period and
// validates everything a request can get wrong, so the route handlers only
// map errors to 400 responses.
//
//	r, err := queryparams.Resolve("7d", "", "", loc, time.Now(), 0)
//	// r.From, r.To: the last 7 local days; r.Interval: day;
//	// r.PrevFrom, r.PrevTo: the 7 days before, cut to the same elapsed time.
package queryparams

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // site timezones must resolve on hosts without a tz database

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// Period names.
const (
	Realtime  = "realtime"
	Today     = "today"
	Yesterday = "yesterday"
	Last24h   = "24h"
	Last7d    = "7d"
	Last30d   = "30d"
	Month     = "month"
	LastMonth = "last_month"
	Last12mo  = "12mo"
	Custom    = "custom"

	// DefaultPeriod applies when a request names none.
	DefaultPeriod = Last30d
)

// MaxRange is the longest range a query may cover.
const MaxRange = 5 // years

// ErrInvalid wraps every error caused by bad parameters.
var ErrInvalid = errors.New("invalid parameter")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Range is a resolved period.
type Range struct {
	Period string
	// From and To bound the period, half-open, UTC.
	From, To time.Time
	// Interval is the period's default time series interval.
	Interval store.Interval
	// PrevFrom and PrevTo bound the comparison period: the equally long
	// period just before (the same number of minutes, days or months),
	// cut to the time elapsed so far when the period is still running, so
	// that today at 10:00 compares with yesterday until 10:00.
	PrevFrom, PrevTo time.Time
}

// Resolve computes a named period (or the custom range from..to, dates as
// YYYY-MM-DD, both inclusive) in loc as of now. retentionDays > 0 rejects
// ranges that start before the oldest data the store keeps.
func Resolve(period, from, to string, loc *time.Location, now time.Time, retentionDays int) (Range, error) {
	if period == "" {
		period = DefaultPeriod
		if from != "" || to != "" {
			period = Custom
		}
	}
	if period != Custom && (from != "" || to != "") {
		return Range{}, invalid("from and to need period=custom")
	}
	local := now.In(loc)
	midnight := func(t time.Time, addDays int) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day()+addDays, 0, 0, 0, 0, loc)
	}
	monthStart := func(addMonths int) time.Time {
		return time.Date(local.Year(), local.Month()+time.Month(addMonths), 1, 0, 0, 0, 0, loc)
	}

	r := Range{Period: period}
	// shift moves the bounds back by one period length.
	var shift func(time.Time) time.Time
	switch period {
	case Realtime:
		r.To = local.Truncate(time.Minute).Add(time.Minute)
		r.From = r.To.Add(-30 * time.Minute)
		r.Interval = store.IntervalMinute
		shift = func(t time.Time) time.Time { return t.Add(-30 * time.Minute) }
	case Last24h:
		r.To = hourStart(local).Add(time.Hour)
		r.From = r.To.Add(-24 * time.Hour)
		r.Interval = store.IntervalHour
		shift = func(t time.Time) time.Time { return t.Add(-24 * time.Hour) }
	case Today, Yesterday:
		back := 0
		if period == Yesterday {
			back = -1
		}
		r.From, r.To = midnight(local, back), midnight(local, back+1)
		r.Interval = store.IntervalHour
		shift = func(t time.Time) time.Time { return midnight(t.In(loc), -1) }
	case Last7d, Last30d:
		days := 7
		if period == Last30d {
			days = 30
		}
		r.From, r.To = midnight(local, 1-days), midnight(local, 1)
		r.Interval = store.IntervalDay
		shift = func(t time.Time) time.Time { return midnight(t.In(loc), -days) }
	case Month, LastMonth:
		back := 0
		if period == LastMonth {
			back = -1
		}
		r.From, r.To = monthStart(back), monthStart(back+1)
		r.Interval = store.IntervalDay
		shift = func(t time.Time) time.Time { return t.In(loc).AddDate(0, -1, 0) }
	case Last12mo:
		r.From, r.To = monthStart(-11), monthStart(1)
		r.Interval = store.IntervalMonth
		shift = func(t time.Time) time.Time { return t.In(loc).AddDate(0, -12, 0) }
	case Custom:
		if from == "" || to == "" {
			return Range{}, invalid("period=custom needs from and to (YYYY-MM-DD)")
		}
		f, err := time.ParseInLocation(time.DateOnly, from, loc)
		if err != nil {
			return Range{}, invalid("from: want a date as YYYY-MM-DD, got %q", from)
		}
		t, err := time.ParseInLocation(time.DateOnly, to, loc)
		if err != nil {
			return Range{}, invalid("to: want a date as YYYY-MM-DD, got %q", to)
		}
		if t.Before(f) {
			return Range{}, invalid("from (%s) is after to (%s)", from, to)
		}
		if f.Year() < 2000 {
			return Range{}, invalid("from: dates before 2000 hold no data")
		}
		if !t.Before(f.AddDate(MaxRange, 0, 0)) {
			return Range{}, invalid("the range may cover at most %d years", MaxRange)
		}
		r.From, r.To = midnight(f, 0), midnight(t, 1)
		days := int(r.To.Sub(r.From).Hours()/24 + 0.5)
		switch {
		case days <= 2:
			r.Interval = store.IntervalHour
		case days <= 92:
			r.Interval = store.IntervalDay
		default:
			r.Interval = store.IntervalMonth
		}
		shift = func(t time.Time) time.Time { return midnight(t.In(loc), -days) }
	default:
		return Range{}, invalid("unknown period %q (want realtime, today, yesterday, 24h, 7d, 30d, month, last_month, 12mo or custom)", period)
	}

	if retentionDays > 0 {
		earliest := midnight(local, -retentionDays)
		if r.From.Before(earliest) {
			return Range{}, invalid("the range starts before %s: events are kept for %d days", earliest.Format(time.DateOnly), retentionDays)
		}
	}

	r.PrevFrom, r.PrevTo = shift(r.From), shift(r.To)
	if elapsed := now.Sub(r.From); now.Before(r.To) && elapsed >= 0 && r.PrevFrom.Add(elapsed).Before(r.PrevTo) {
		r.PrevTo = r.PrevFrom.Add(elapsed).Truncate(time.Second)
		if !r.PrevTo.After(r.PrevFrom) {
			r.PrevTo = r.PrevFrom.Add(time.Second)
		}
	}
	r.From, r.To, r.PrevFrom, r.PrevTo = r.From.UTC(), r.To.UTC(), r.PrevFrom.UTC(), r.PrevTo.UTC()
	return r, nil
}

// hourStart is the start of t's local hour (in zones offset by a half hour,
// that is not a whole UTC hour).
func hourStart(t time.Time) time.Time {
	return t.Add(-time.Duration(t.Minute())*time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
}
