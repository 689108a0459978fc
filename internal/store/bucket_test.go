package store

import (
	"testing"
	"time"
)

func TestNewBuckets(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	berlin, lhi, kolkata := load("Europe/Berlin"), load("Australia/Lord_Howe"), load("Asia/Kolkata")
	day := func(loc *time.Location, y int, m time.Month, d, n int) Query {
		from := time.Date(y, m, d, 0, 0, 0, 0, loc)
		return Query{SiteID: "s", From: from, To: time.Date(y, m, d+n, 0, 0, 0, 0, loc), Location: loc}
	}

	tests := []struct {
		name     string
		q        Query
		interval Interval
		n        int
		first    string // local clock of the first and last buckets
		last     string
	}{
		{"spring forward: 23 hours", day(berlin, 2024, 3, 31, 1), IntervalHour, 23, "2024-03-31T00:00:00+01:00", "2024-03-31T23:00:00+02:00"},
		{"fall back: 25 hours", day(berlin, 2024, 10, 27, 1), IntervalHour, 25, "2024-10-27T00:00:00+02:00", "2024-10-27T23:00:00+01:00"},
		{"days across DST", day(berlin, 2024, 3, 30, 3), IntervalDay, 3, "2024-03-30T00:00:00+01:00", "2024-04-01T00:00:00+02:00"},
		{"half-hour zone hours start at :30 UTC", day(kolkata, 2024, 3, 1, 1), IntervalHour, 24, "2024-03-01T00:00:00+05:30", "2024-03-01T23:00:00+05:30"},
		// Lord Howe falls back half an hour at 02:00: 01:30-02:00 repeats.
		{"half-hour DST change", day(lhi, 2024, 4, 7, 1), IntervalHour, 25, "2024-04-07T00:00:00+11:00", "2024-04-07T23:00:00+10:30"},
		{"minutes of a day", day(berlin, 2024, 3, 31, 1), IntervalMinute, 23 * 60, "2024-03-31T00:00:00+01:00", "2024-03-31T23:59:00+02:00"},
		{"months of a year", day(berlin, 2024, 1, 1, 366), IntervalMonth, 12, "2024-01-01T00:00:00+01:00", "2024-12-01T00:00:00+01:00"},
		{"month of a partial range", Query{SiteID: "s", From: time.Date(2024, 3, 15, 12, 0, 0, 0, berlin), To: time.Date(2024, 4, 2, 0, 0, 0, 0, berlin), Location: berlin},
			IntervalMonth, 2, "2024-03-01T00:00:00+01:00", "2024-04-01T00:00:00+02:00"},
		{"unaligned range starts at its bucket", Query{SiteID: "s", From: time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC), To: time.Date(2024, 3, 1, 12, 0, 1, 0, time.UTC)},
			IntervalHour, 3, "2024-03-01T10:00:00Z", "2024-03-01T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.q.Validate(); err != nil {
				t.Fatal(err)
			}
			b, err := NewBuckets(tt.q, tt.interval)
			if err != nil {
				t.Fatal(err)
			}
			starts := b.Starts()
			if b.Len() != tt.n {
				t.Fatalf("got %d buckets, want %d: %v", b.Len(), tt.n, starts)
			}
			if got := starts[0].Format(time.RFC3339); got != tt.first {
				t.Errorf("first bucket %s, want %s", got, tt.first)
			}
			if got := starts[len(starts)-1].Format(time.RFC3339); got != tt.last {
				t.Errorf("last bucket %s, want %s", got, tt.last)
			}
			for i := 1; i < len(starts); i++ {
				if !starts[i-1].Before(starts[i]) {
					t.Fatalf("bucket %d (%s) does not follow %s", i, starts[i], starts[i-1])
				}
			}
		})
	}
}

// TestBucketKeys checks the integer arithmetic the stores run against the
// bucket each second of a DST day falls into by Go's calendar.
func TestBucketKeys(t *testing.T) {
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, iv := range []Interval{IntervalMinute, IntervalHour, IntervalDay, IntervalMonth} {
			t.Run(name+"/"+string(iv), func(t *testing.T) {
				q := Query{SiteID: "s", From: time.Date(2024, 3, 9, 0, 0, 0, 0, loc), To: time.Date(2024, 4, 8, 0, 0, 0, 0, loc), Location: loc}
				if iv == IntervalMinute {
					q.To = q.From.Add(25 * time.Hour)
				}
				if err := q.Validate(); err != nil {
					t.Fatal(err)
				}
				b, err := NewBuckets(q, iv)
				if err != nil {
					t.Fatal(err)
				}
				for sec := q.From.Unix(); sec < q.To.Unix(); sec += 97 {
					i, ok := b.Index(key(b, sec))
					if !ok {
						t.Fatalf("%s: key %d has no bucket", time.Unix(sec, 0).In(loc), key(b, sec))
					}
					start := b.Starts()[i]
					var end time.Time
					if i+1 < b.Len() {
						end = b.Starts()[i+1]
					} else {
						end = q.To
					}
					if at := time.Unix(sec, 0); at.Before(start) && i > 0 || !at.Before(end) {
						t.Fatalf("%s falls into the bucket [%s, %s)", at.In(loc), start, end)
					}
				}
			})
		}
	}
}

// key evaluates the stores' bucket key expression in Go.
func key(b *Buckets, t int64) int64 {
	if b.Interval == IntervalMonth {
		n := int64(0)
		for _, bound := range b.MonthBounds {
			if t >= bound {
				n++
			}
		}
		return n
	}
	var off int64
	for _, s := range b.Segments {
		off = s.Offset
		if s.Until == 0 || t < s.Until {
			break
		}
	}
	if b.Interval == IntervalDay {
		return (t + off) / 86400
	}
	return (t+off)/b.Unit()*b.Unit() - off
}

func TestNewBucketsLimits(t *testing.T) {
	q := Query{SiteID: "s", From: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)}
	if _, err := NewBuckets(q, IntervalMinute); err == nil {
		t.Fatal("two days of minutes: want an error")
	}
	if _, err := NewBuckets(q, Interval("week")); err == nil {
		t.Fatal("unknown interval: want an error")
	}
}

// A store's rollups answer only what they answer as its rows would: no
// filters, whole hours, buckets of whole hours.
func TestRollable(t *testing.T) {
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	q := func(from, to time.Time, loc *time.Location, filters ...Filter) Query {
		return Query{SiteID: "s", From: from, To: to, Location: loc, Filters: filters}
	}
	lordHowe, err := time.LoadLocation("Australia/Lord_Howe")
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	country := Filter{Dimension: DimCountry, Op: OpIs, Values: []string{"DE"}}
	scenarios := []struct {
		name     string
		q        Query
		interval Interval
		want     bool
	}{
		{"whole days", q(from, from.AddDate(0, 0, 30), time.UTC), IntervalDay, true},
		{"whole hours, hourly", q(from.Add(3*time.Hour), from.Add(9*time.Hour), time.UTC), IntervalHour, true},
		{"months in Berlin", q(from.Add(-time.Hour), from.AddDate(0, 2, 0).Add(-time.Hour), berlin), IntervalMonth, true},
		{"a filter", q(from, from.AddDate(0, 0, 1), time.UTC, country), IntervalDay, false},
		{"minutes", q(from, from.Add(time.Hour), time.UTC), IntervalMinute, false},
		{"a cut hour", q(from.Add(time.Minute), from.AddDate(0, 0, 1), time.UTC), IntervalDay, false},
		{"half-hour offsets", q(from.Add(-630*time.Minute), from.Add(810*time.Minute), lordHowe), IntervalHour, false},
		{"invalid", q(from, from, time.UTC), IntervalDay, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			got := sc.q.Rollable()
			if got {
				b, err := NewBuckets(sc.q, sc.interval)
				got = err == nil && b.WholeHours()
			}
			if got != sc.want {
				t.Errorf("rollable: %v, want %v", got, sc.want)
			}
		})
	}
}
