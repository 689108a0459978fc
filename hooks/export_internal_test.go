package hooks

import (
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

func TestCSVQuotingAndFormulas(t *testing.T) {
	rows := []store.Row{
		{Value: "=HYPERLINK(\"http://evil\")", Visitors: 1},
		{Value: "+1", Visitors: 2},
		{Value: "-2", Visitors: 3},
		{Value: "@SUM(A1)", Visitors: 4},
		{Value: "/a,b \"c\"\nd", Visitors: 5, BounceRate: 12.5},
	}
	want := "value,visitors,visits,pageviews,events,bounceRate,visitDuration\r\n" +
		"\"'=HYPERLINK(\"\"http://evil\"\")\",1,0,0,0,0,0\r\n" +
		"'+1,2,0,0,0,0,0\r\n" +
		"'-2,3,0,0,0,0,0\r\n" +
		"'@SUM(A1),4,0,0,0,0,0\r\n" +
		"\"/a,b \"\"c\"\"\r\nd\",5,0,0,0,12.5,0\r\n" // a line break inside a cell too
	if got := string(encodeCSV(rows)); got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}

// Goal rows carry conversionRate and revenue, which other rows leave out,
// as their JSON does; revenue is one cell of totals per currency.
func TestCSVGoalColumns(t *testing.T) {
	rows := []store.Row{
		{Value: "Purchase", Visitors: 2, Events: 3, ConversionRate: 12.5,
			Revenue: []store.Revenue{{Currency: "EUR", Total: "99.98", Average: "49.99"}, {Currency: "USD", Total: "10", Average: "10"}}},
		{Value: "Signup", Visitors: 1, Events: 1, ConversionRate: 6.3},
	}
	want := "value,visitors,visits,pageviews,events,bounceRate,visitDuration,conversionRate,revenue\r\n" +
		"Purchase,2,0,0,3,0,0,12.5,99.98 EUR; 10 USD\r\n" +
		"Signup,1,0,0,1,0,0,6.3,\r\n"
	if got := string(encodeCSV(rows)); got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}
