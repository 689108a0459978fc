package queryparams

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

func TestParseFilters(t *testing.T) {
	f := func(d store.Dimension, op store.Op, values ...string) store.Filter {
		return store.Filter{Dimension: d, Op: op, Values: values}
	}
	tests := []struct {
		name, in string
		want     []store.Filter
	}{
		{"empty", "", nil},
		{"json", `[["country","is","DE"],["page","contains","/blog"]]`,
			[]store.Filter{f(store.DimCountry, store.OpIs, "DE"), f(store.DimPage, store.OpContains, "/blog")}},
		{"json any-of string", `[["country","is_not","DE|FR"]]`, []store.Filter{f(store.DimCountry, store.OpIsNot, "DE", "FR")}},
		{"json array keeps pipes", `[["page","is",["/a|b","/c"]]]`, []store.Filter{f(store.DimPage, store.OpIs, "/a|b", "/c")}},
		{"json escaped pipe", `[["page","is","/a\\|b"]]`, []store.Filter{f(store.DimPage, store.OpIs, "/a|b")}},
		{"json empty value", `[["referrer","is",""]]`, []store.Filter{f(store.DimReferrer, store.OpIs, "")}},
		{"json prop", `[["event_prop:plan","is","pro"]]`, []store.Filter{f(store.PropDimension("plan"), store.OpIs, "pro")}},
		{"compact", `country==DE|FR;page~=/blog;os!=Linux`,
			[]store.Filter{f(store.DimCountry, store.OpIs, "DE", "FR"), f(store.DimPage, store.OpContains, "/blog"), f(store.DimOS, store.OpIsNot, "Linux")}},
		{"compact escapes", `page==/a\;b\|c\\;city==Paris`, []store.Filter{f(store.DimPage, store.OpIs, `/a;b|c\`), f(store.DimCity, store.OpIs, "Paris")}},
		{"compact value with operators", `page==/x==y`, []store.Filter{f(store.DimPage, store.OpIs, "/x==y")}},
		{"compact trailing separator", `country==DE;`, []store.Filter{f(store.DimCountry, store.OpIs, "DE")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFilters(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseFiltersErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"bad json", `[["country","is"`, "not a JSON array"},
		{"not a triple", `[["country","is"]]`, "want [dimension, operator, value]"},
		{"number value", `[["country","is",1]]`, "string or an array"},
		{"null value", `[["country","is",null]]`, "string or an array"},
		{"null in values", `[["country","is",["DE",null]]]`, "string or an array"},
		{"unknown dimension", `[["colour","is","red"]]`, `unknown dimension "colour"`},
		{"unknown operator", `[["country","like","D%"]]`, `unknown filter operator "like"`},
		{"prop without key", `[["event_prop:","is","x"]]`, "event_prop needs a property key"},
		{"empty contains", `page~=`, "needs a non-empty value"},
		{"compact without operator", `country=DE`, "want dimension==value"},
		{"injection is just an unknown dimension", `[["country) OR 1=1 --","is","x"]]`, "unknown dimension"},
		{"too many filters", strings.Repeat("country==DE;", store.MaxFilters+1), "at most 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFilters(tt.in)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	now := time.Date(2024, 3, 31, 10, 0, 0, 0, time.UTC)
	parse := func(q string) (Params, error) {
		values, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		return Parse(values, "site1", time.UTC, now, 0)
	}

	t.Run("defaults", func(t *testing.T) {
		p, err := parse("")
		if err != nil {
			t.Fatal(err)
		}
		if p.Period != Last30d || p.Interval != store.IntervalDay || p.Limit != DefaultLimit || p.Page != 1 || p.Offset() != 0 {
			t.Fatalf("got %+v", p)
		}
		if p.Query.SiteID != "site1" || !p.Query.From.Equal(p.From) || !p.Query.To.Equal(p.To) {
			t.Fatalf("query %+v does not cover the range", p.Query)
		}
		prev := p.Previous()
		if !prev.From.Equal(p.PrevFrom) || !prev.To.Equal(p.PrevTo) {
			t.Fatalf("previous %+v", prev)
		}
	})
	t.Run("everything", func(t *testing.T) {
		p, err := parse("period=7d&interval=hour&limit=25&page=3&filters=" + url.QueryEscape(`[["country","is","DE"]]`))
		if err != nil {
			t.Fatal(err)
		}
		if p.Interval != store.IntervalHour || p.Limit != 25 || p.Offset() != 50 || len(p.Query.Filters) != 1 {
			t.Fatalf("got %+v", p)
		}
	})

	errs := []struct{ name, query, want string }{
		{"unknown interval", "interval=week", `unknown interval "week"`},
		{"too many buckets", "period=12mo&interval=minute", "more than 2000 buckets"},
		{"limit zero", "limit=0", "limit: want a number from 1 to 1000"},
		{"limit too big", "limit=1001", "limit: want a number from 1 to 1000"},
		{"limit not a number", "limit=ten", "limit: want a number"},
		{"page zero", "page=0", "page: want a number from 1"},
		{"page negative", "page=-2", "page: want a number from 1"},
		{"bad filters", "filters=[", "not a JSON array"},
		{"bad period", "period=forever", "unknown period"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.query)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}
