package queryparams

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestResolve(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	kolkata := mustLoad(t, "Asia/Kolkata")
	// 2024-03-31 is Berlin's spring-forward day: 23 hours long.
	now := time.Date(2024, 3, 31, 10, 15, 30, 0, berlin)
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc).UTC()
	}

	tests := []struct {
		name, period, from, to string
		loc                    *time.Location
		want                   Range
	}{
		{"default is 30d", "", "", "", berlin, Range{Period: Last30d,
			From: at(berlin, 2024, 3, 2, 0, 0), To: at(berlin, 2024, 4, 1, 0, 0), Interval: store.IntervalDay,
			PrevFrom: at(berlin, 2024, 2, 1, 0, 0), PrevTo: at(berlin, 2024, 2, 1, 0, 0).Add(now.Sub(at(berlin, 2024, 3, 2, 0, 0)))}},
		{"realtime", Realtime, "", "", berlin, Range{Period: Realtime,
			From: at(berlin, 2024, 3, 31, 9, 46), To: at(berlin, 2024, 3, 31, 10, 16), Interval: store.IntervalMinute,
			PrevFrom: at(berlin, 2024, 3, 31, 9, 16), PrevTo: at(berlin, 2024, 3, 31, 9, 16).Add(29*time.Minute + 30*time.Second)}},
		{"today is 23 hours, compared with yesterday until 10:15:30", Today, "", "", berlin, Range{Period: Today,
			From: at(berlin, 2024, 3, 31, 0, 0), To: at(berlin, 2024, 4, 1, 0, 0), Interval: store.IntervalHour,
			PrevFrom: at(berlin, 2024, 3, 30, 0, 0), PrevTo: at(berlin, 2024, 3, 30, 0, 0).Add(9*time.Hour + 15*time.Minute + 30*time.Second)}},
		{"yesterday", Yesterday, "", "", berlin, Range{Period: Yesterday,
			From: at(berlin, 2024, 3, 30, 0, 0), To: at(berlin, 2024, 3, 31, 0, 0), Interval: store.IntervalHour,
			PrevFrom: at(berlin, 2024, 3, 29, 0, 0), PrevTo: at(berlin, 2024, 3, 30, 0, 0)}},
		{"24h", Last24h, "", "", berlin, Range{Period: Last24h,
			From: at(berlin, 2024, 3, 31, 11, 0).Add(-24 * time.Hour), To: at(berlin, 2024, 3, 31, 11, 0), Interval: store.IntervalHour,
			PrevFrom: at(berlin, 2024, 3, 31, 11, 0).Add(-48 * time.Hour), PrevTo: at(berlin, 2024, 3, 31, 11, 0).Add(-48*time.Hour + 23*time.Hour + 15*time.Minute + 30*time.Second)}},
		{"24h in a half-hour zone starts on a local hour", Last24h, "", "", kolkata, Range{Period: Last24h,
			From: at(kolkata, 2024, 3, 30, 14, 0), To: at(kolkata, 2024, 3, 31, 14, 0), Interval: store.IntervalHour,
			PrevFrom: at(kolkata, 2024, 3, 29, 14, 0), PrevTo: at(kolkata, 2024, 3, 29, 14, 0).Add(23*time.Hour + 45*time.Minute + 30*time.Second)}},
		{"7d", Last7d, "", "", berlin, Range{Period: Last7d,
			From: at(berlin, 2024, 3, 25, 0, 0), To: at(berlin, 2024, 4, 1, 0, 0), Interval: store.IntervalDay,
			PrevFrom: at(berlin, 2024, 3, 18, 0, 0), PrevTo: at(berlin, 2024, 3, 18, 0, 0).Add(now.Sub(at(berlin, 2024, 3, 25, 0, 0)))}},
		{"month late in the month compares with all of a shorter one", Month, "", "", berlin, Range{Period: Month,
			From: at(berlin, 2024, 3, 1, 0, 0), To: at(berlin, 2024, 4, 1, 0, 0), Interval: store.IntervalDay,
			PrevFrom: at(berlin, 2024, 2, 1, 0, 0), PrevTo: at(berlin, 2024, 3, 1, 0, 0)}},
		{"last_month compares with the month before, whole", LastMonth, "", "", berlin, Range{Period: LastMonth,
			From: at(berlin, 2024, 2, 1, 0, 0), To: at(berlin, 2024, 3, 1, 0, 0), Interval: store.IntervalDay,
			PrevFrom: at(berlin, 2024, 1, 1, 0, 0), PrevTo: at(berlin, 2024, 2, 1, 0, 0)}},
		{"12mo", Last12mo, "", "", berlin, Range{Period: Last12mo,
			From: at(berlin, 2023, 4, 1, 0, 0), To: at(berlin, 2024, 4, 1, 0, 0), Interval: store.IntervalMonth,
			PrevFrom: at(berlin, 2022, 4, 1, 0, 0), PrevTo: at(berlin, 2023, 4, 1, 0, 0)}},
		{"custom single day is hourly", Custom, "2024-03-10", "2024-03-10", berlin, Range{Period: Custom,
			From: at(berlin, 2024, 3, 10, 0, 0), To: at(berlin, 2024, 3, 11, 0, 0), Interval: store.IntervalHour,
			PrevFrom: at(berlin, 2024, 3, 9, 0, 0), PrevTo: at(berlin, 2024, 3, 10, 0, 0)}},
		{"custom across DST is daily, previous of equal days", "", "2024-03-25", "2024-04-02", berlin, Range{Period: Custom,
			From: at(berlin, 2024, 3, 25, 0, 0), To: at(berlin, 2024, 4, 3, 0, 0), Interval: store.IntervalDay,
			PrevFrom: at(berlin, 2024, 3, 16, 0, 0), PrevTo: at(berlin, 2024, 3, 16, 0, 0).Add(now.Sub(at(berlin, 2024, 3, 25, 0, 0)))}},
		{"custom long is monthly", Custom, "2023-01-01", "2023-12-31", berlin, Range{Period: Custom,
			From: at(berlin, 2023, 1, 1, 0, 0), To: at(berlin, 2024, 1, 1, 0, 0), Interval: store.IntervalMonth,
			PrevFrom: at(berlin, 2022, 1, 1, 0, 0), PrevTo: at(berlin, 2023, 1, 1, 0, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.period, tt.from, tt.to, tt.loc, now, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("\n got %s\nwant %s", show(got), show(tt.want))
			}
		})
	}
}

func TestResolveMonthEarly(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	now := time.Date(2024, 4, 10, 8, 0, 0, 0, berlin)
	got, err := Resolve(Month, "", "", berlin, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	march := time.Date(2024, 3, 1, 0, 0, 0, 0, berlin)
	// 9 days and 8 hours into April: March 1 until March 10, 08:00.
	if !got.PrevFrom.Equal(march) || !got.PrevTo.Equal(march.Add(9*24*time.Hour+8*time.Hour)) {
		t.Fatalf("got %s", show(got))
	}
}

func show(r Range) string {
	f := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	return r.Period + " " + f(r.From) + ".." + f(r.To) + " " + string(r.Interval) + " prev " + f(r.PrevFrom) + ".." + f(r.PrevTo)
}

func TestResolveErrors(t *testing.T) {
	now := time.Date(2024, 3, 31, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, period, from, to string
		retention              int
		want                   string
	}{
		{"unknown period", "week", "", "", 0, "unknown period"},
		{"custom without dates", Custom, "", "", 0, "needs from and to"},
		{"custom without to", Custom, "2024-01-01", "", 0, "needs from and to"},
		{"bad from", Custom, "2024-13-01", "2024-12-01", 0, "from: want a date"},
		{"bad to", Custom, "2024-01-01", "tomorrow", 0, "to: want a date"},
		{"from after to", Custom, "2024-02-01", "2024-01-01", 0, "is after to"},
		{"more than five years", Custom, "2019-01-01", "2024-01-01", 0, "at most 5 years"},
		{"before 2000", Custom, "1999-12-31", "2000-01-02", 0, "before 2000"},
		{"dates without custom", Last7d, "2024-01-01", "2024-01-02", 0, "need period=custom"},
		{"12mo beyond a 30-day retention", Last12mo, "", "", 30, "kept for 30 days"},
		{"custom beyond retention", Custom, "2024-01-01", "2024-01-31", 60, "kept for 60 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.period, tt.from, tt.to, time.UTC, now, tt.retention)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
	t.Run("30d within a 30-day retention", func(t *testing.T) {
		if _, err := Resolve(Last30d, "", "", time.UTC, now, 30); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("exactly five years", func(t *testing.T) {
		if _, err := Resolve(Custom, "2019-01-01", "2023-12-31", time.UTC, now, 0); err != nil {
			t.Fatal(err)
		}
	})
}
