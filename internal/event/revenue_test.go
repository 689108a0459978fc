package event

import "testing"

func TestAmounts(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		text string
	}{
		{"49", 49_000_000, "49.00"}, {"49.9", 49_900_000, "49.90"}, {"0.000001", 1, "0.000001"},
		{"0.125", 125_000, "0.125"}, {"1000000000", 1_000_000_000_000_000, "1000000000.00"},
	} {
		got, err := ParseAmount(tt.in)
		if err != nil || got != tt.want || FormatAmount(got) != tt.text {
			t.Errorf("%q: got %d, %v, %q; want %d, %q", tt.in, got, err, FormatAmount(got), tt.want, tt.text)
		}
	}
	for _, bad := range []string{"", ".5", "5.", "-1", "1e3", "1.2345678", "1000000000.01", "12345678901", " 1", "0x10"} {
		if _, err := ParseAmount(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestRevenueRoundTrip(t *testing.T) {
	ev := Event{ID: "x", Type: Custom, Name: "Buy", RevenueAmount: 49_990_000, RevenueCurrency: "EUR", VisitorID: 1, SessionID: 2}
	b, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Event
	if err := got.UnmarshalBinary(b); err != nil || got.RevenueAmount != ev.RevenueAmount || got.RevenueCurrency != "EUR" {
		t.Fatalf("got %+v, %v", got, err)
	}
}
