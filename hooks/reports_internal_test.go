package hooks

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDueReport checks when weekly and monthly reports are due and the
// periods they cover, in the site's time zone.
func TestDueReport(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	newYork, _ := time.LoadLocation("America/New_York")
	day := func(loc *time.Location, y int, m time.Month, d int) time.Time {
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	for _, tc := range []struct {
		name          string
		freq          string
		now           time.Time
		loc           *time.Location
		due           bool
		from, to, prv time.Time
		key           string
	}{
		{"weekly on a Monday, across the spring change", "weekly", time.Date(2024, 4, 1, 6, 0, 0, 0, time.UTC), berlin, true,
			day(berlin, 2024, 3, 25), day(berlin, 2024, 4, 1), day(berlin, 2024, 3, 18), "weekly:2024-03-25"},
		{"weekly: Monday already in Berlin, Sunday in UTC", "weekly", time.Date(2024, 3, 31, 22, 30, 0, 0, time.UTC), berlin, true,
			day(berlin, 2024, 3, 25), day(berlin, 2024, 4, 1), day(berlin, 2024, 3, 18), "weekly:2024-03-25"},
		{"weekly: Monday in UTC, still Sunday in New York", "weekly", time.Date(2024, 4, 1, 2, 0, 0, 0, time.UTC), newYork, false,
			time.Time{}, time.Time{}, time.Time{}, ""},
		{"weekly on a Tuesday", "weekly", time.Date(2024, 4, 2, 12, 0, 0, 0, time.UTC), time.UTC, false,
			time.Time{}, time.Time{}, time.Time{}, ""},
		{"weekly across the new year", "weekly", time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC), time.UTC, true,
			day(time.UTC, 2023, 12, 25), day(time.UTC, 2024, 1, 1), day(time.UTC, 2023, 12, 18), "weekly:2023-12-25"},
		{"monthly on the 1st", "monthly", time.Date(2024, 4, 1, 6, 0, 0, 0, time.UTC), berlin, true,
			day(berlin, 2024, 3, 1), day(berlin, 2024, 4, 1), day(berlin, 2024, 2, 1), "monthly:2024-03"},
		{"monthly: the 1st in Berlin, the 31st in UTC", "monthly", time.Date(2024, 3, 31, 23, 30, 0, 0, time.UTC), berlin, true,
			day(berlin, 2024, 3, 1), day(berlin, 2024, 4, 1), day(berlin, 2024, 2, 1), "monthly:2024-03"},
		{"monthly in January", "monthly", time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC), newYork, true,
			day(newYork, 2024, 12, 1), day(newYork, 2025, 1, 1), day(newYork, 2024, 11, 1), "monthly:2024-12"},
		{"monthly on the 2nd", "monthly", time.Date(2024, 4, 2, 6, 0, 0, 0, time.UTC), time.UTC, false,
			time.Time{}, time.Time{}, time.Time{}, ""},
		{"unknown frequency", "daily", time.Date(2024, 4, 1, 6, 0, 0, 0, time.UTC), time.UTC, false,
			time.Time{}, time.Time{}, time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, due := dueReport(tc.freq, tc.now, tc.loc)
			if due != tc.due {
				t.Fatalf("due %v, want %v", due, tc.due)
			}
			if !due {
				return
			}
			if !p.From.Equal(tc.from) || !p.To.Equal(tc.to) || !p.PrevFrom.Equal(tc.prv) || p.Key != tc.key {
				t.Fatalf("got %s – %s (before: from %s), key %q; want %s – %s (from %s), %q",
					p.From, p.To, p.PrevFrom, p.Key, tc.from, tc.to, tc.prv, tc.key)
			}
		})
	}
}

func TestChange(t *testing.T) {
	for _, tc := range []struct {
		cur, prev int64
		want      string
	}{
		{150, 100, "+50%"}, {50, 100, "-50%"}, {100, 100, "±0%"}, {0, 0, "±0%"}, {7, 0, "new"}, {0, 7, "-100%"}, {2, 3, "-33%"},
	} {
		if got := change(tc.cur, tc.prev); got != tc.want {
			t.Errorf("change(%d, %d) = %q, want %q", tc.cur, tc.prev, got, tc.want)
		}
	}
}

// TestWebhookClientPublicOnly checks that the default webhook client does
// not reach the server's own network.
func TestWebhookClientPublicOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the webhook reached a loopback address")
	}))
	defer srv.Close()
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), "http://[::1]:9/", "http://169.254.169.254/latest", "http://10.0.0.1:9/"} {
		res, err := webhookClient().Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			res.Body.Close()
			t.Errorf("%s: posted, want refused", u)
		} else if !strings.Contains(err.Error(), "webhooks may not reach") {
			t.Errorf("%s: %v, want refused by the dialer", u, err)
		}
	}
}
