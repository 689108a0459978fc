package presence

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestArrivalJSON: appendJSON writes what json.Marshal writes, to a JSON
// decoder, for all kinds of values.
func TestArrivalJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 16, 5, 4, 123456789, time.UTC)
	cases := []Arrival{
		{},
		{Visitor: "v1", Time: at, Entry: "/"},
		{Visitor: "v2", Time: at.In(time.FixedZone("X", 5*3600+1800)), Entry: "/pricing?a=1&b=<2>",
			Referrer: "news.ycombinator.com", Country: "DE", Region: "Berlin", City: "Berlin",
			Lat: 52.5244, Lon: 13.4105, Device: "desktop", Browser: "Chrome", OS: "Windows"},
		{Visitor: "quote\" backslash\\ tab\t nl\n ctl\x01 ls\u2028 ps\u2029 emoji😀", Entry: "bad utf-8 \xff\xfe", City: "São Paulo"},
		{Lat: -33.8688, Lon: 151.2093},
		{Lat: 1e-7, Lon: -2.5e-9},
		{Lat: 1e21, Lon: -123456789012345678901234.0},
		{Lat: math.SmallestNonzeroFloat64, Lon: math.MaxFloat64},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteRune(rune(rng.IntN(0x2100)))
		}
		return b.String()
	}
	for range 500 {
		cases = append(cases, Arrival{
			Visitor: str(), Time: at.Add(time.Duration(rng.Int64N(1e15))), Entry: str(), Referrer: str(),
			Country: str(), City: str(), Lat: rng.Float64()*180 - 90, Lon: rng.NormFloat64() * 1e3, Browser: str(),
		})
	}
	for _, a := range cases {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		got := a.appendJSON([]byte("prefix"))
		if !strings.HasPrefix(string(got), "prefix") {
			t.Fatalf("appendJSON dropped what the buffer held: %q", got)
		}
		got = got[len("prefix"):]
		var gotV, wantV map[string]any
		if err := json.Unmarshal(got, &gotV); err != nil {
			t.Fatalf("appendJSON(%+v) = %s: %v", a, got, err)
		}
		if err := json.Unmarshal(want, &wantV); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotV, wantV) {
			t.Fatalf("appendJSON(%+v)\n = %s\nwant %s", a, got, want)
		}
	}
}

// TestArrivalJSONNonFinite: JSON has no NaN or infinity; they are left out.
func TestArrivalJSONNonFinite(t *testing.T) {
	a := Arrival{Visitor: "v", Lat: math.NaN(), Lon: math.Inf(-1)}
	got := a.appendJSON(nil)
	var v map[string]any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if _, ok := v["lat"]; ok {
		t.Fatalf("%s: NaN written", got)
	}
	if _, ok := v["lon"]; ok {
		t.Fatalf("%s: infinity written", got)
	}
}
