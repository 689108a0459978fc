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
