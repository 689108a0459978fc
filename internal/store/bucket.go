package store

import "time"

// MaxBuckets bounds a time series (a day of minutes, a month of hours, five
// years of days).
const MaxBuckets = 2000

// Buckets are the slots of a time series over [from, to) in a timezone.
//
// Neither store has a timezone database the other can be trusted to share
// (SQLite has none, and ClickHouse's may differ from Go's), so the bucketing
// is computed here, from Go's tz database, and handed to both stores as plain
// integer arithmetic: within the range, the UTC offset is piecewise constant
// (Segments), and a row's bucket key is
//
//	minute, hour: floor((t + off(t)) / unit) * unit - off(t)  (the bucket's start, unix seconds)
//	day:          floor((t + off(t)) / 86400)                 (the local date, days since 1970-01-01)
//	month:        the number of MonthBounds <= t              (the bucket's index)
//
// with t in unix seconds. Hour buckets are real hours: on the night clocks
// fall back, the repeated local hour is two buckets; on the night they spring
// forward, the skipped hour is none. Days are local calendar days (23 or 25
// hours long across a DST change). A bucket's start is the instant its local
// hour, day or month began, or the UTC offset change that began it (the
// repeated half hour on Lord Howe Island).
type Buckets struct {
	Interval Interval
	// Segments give the UTC offset over the range, in order; the first starts
	// at or before from, the last ends at or after to.
	Segments []Segment
	// MonthBounds (month interval only) are the starts of buckets 1..n-1, unix
	// seconds.
	MonthBounds []int64

	starts []time.Time
	index  map[int64]int
}

// Segment is a stretch of time with one UTC offset.
type Segment struct {
	// Until is where the segment ends (unix seconds, exclusive); 0 for the last.
	Until int64
	// Offset is the UTC offset in seconds.
	Offset int64
}

// Unit returns the bucket width in seconds for minute and hour buckets.
func (b *Buckets) Unit() int64 {
	if b.Interval == IntervalMinute {
		return 60
	}
	return 3600
}

// Len returns the number of buckets.
func (b *Buckets) Len() int { return len(b.starts) }

// Starts returns the buckets' start times in the query's location.
func (b *Buckets) Starts() []time.Time { return b.starts }

// Index returns the position of the bucket with the given store key.
func (b *Buckets) Index(key int64) (int, bool) {
	i, ok := b.index[key]
	return i, ok
}

// NewBuckets computes the buckets of q's range at the given interval.
func NewBuckets(q Query, interval Interval) (*Buckets, error) {
	if err := interval.Validate(); err != nil {
		return nil, err
	}
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	from, to := q.From.Unix(), q.To.Unix()
	b := &Buckets{Interval: interval, Segments: segments(q.From, q.To, loc), index: map[int64]int{}}

	add := func(key int64, start time.Time) bool {
		if _, ok := b.index[key]; ok {
			return true
		}
		if len(b.starts) >= MaxBuckets {
			return false
		}
		b.index[key] = len(b.starts)
		b.starts = append(b.starts, start)
		return true
	}
	tooMany := func() error {
		return invalid("interval %s gives more than %d buckets for this range; choose a wider interval", interval, MaxBuckets)
	}

	switch interval {
	case IntervalMinute, IntervalHour:
		unit := b.Unit()
		segStart := from
		for i, s := range b.Segments {
			segEnd := s.Until
			if segEnd == 0 || segEnd > to {
				segEnd = to
			}
			for k := floorDiv(segStart+s.Offset, unit)*unit - s.Offset; k < segEnd; k += unit {
				// After a change by half an hour (Lord Howe Island), the
				// first hour of the new offset began before the change; it
				// is labelled with the change.
				start := k
				if i > 0 && start < segStart {
					start = segStart
				}
				if !add(k, time.Unix(start, 0).In(loc)) {
					return nil, tooMany()
				}
			}
			segStart = segEnd
		}
	case IntervalDay:
		segStart := from
		for _, s := range b.Segments {
			segEnd := s.Until
			if segEnd == 0 || segEnd > to {
				segEnd = to
			}
			for d := floorDiv(segStart+s.Offset, 86400); d <= floorDiv(segEnd-1+s.Offset, 86400); d++ {
				y, m, dd := time.Unix(d*86400, 0).UTC().Date()
				if !add(d, time.Date(y, m, dd, 0, 0, 0, 0, loc)) {
					return nil, tooMany()
				}
			}
			segStart = segEnd
		}
	case IntervalMonth:
		local := q.From.In(loc)
		start := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
		for i := int64(0); start.Before(q.To); i++ {
			if i > 0 {
				b.MonthBounds = append(b.MonthBounds, start.Unix())
			}
			if !add(i, start) {
				return nil, tooMany()
			}
			start = start.AddDate(0, 1, 0)
		}
	}
	return b, nil
}

// segments returns the offset segments covering [from, to).
func segments(from, to time.Time, loc *time.Location) []Segment {
	var segs []Segment
	t := from.In(loc)
	for {
		_, off := t.Zone()
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			segs = append(segs, Segment{Offset: int64(off)})
			return segs
		}
		segs = append(segs, Segment{Until: end.Unix(), Offset: int64(off)})
		t = end
	}
}

// Fill turns per-bucket totals (by store key) into the full series, empty
// buckets included.
func (b *Buckets) Fill(totals map[int64]Totals) []Point {
	points := make([]Point, len(b.starts))
	for i, at := range b.starts {
		points[i] = Totals{}.Point(at)
	}
	for k, t := range totals {
		if i, ok := b.index[k]; ok {
			points[i] = t.Point(b.starts[i])
		}
	}
	return points
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// WholeHours reports whether each bucket is made of whole UTC hours: no
// minutes, and every UTC offset and month bound of the range on the hour.
func (b *Buckets) WholeHours() bool {
	if b.Interval == IntervalMinute {
		return false
	}
	for _, seg := range b.Segments {
		if seg.Until%3600 != 0 || seg.Offset%3600 != 0 {
			return false
		}
	}
	for _, bound := range b.MonthBounds {
		if bound%3600 != 0 {
			return false
		}
	}
	return true
}
