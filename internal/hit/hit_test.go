package hit

import (
	"errors"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

const site = "abcdefghij12345"

func TestParseValid(t *testing.T) {
	scenarios := []struct {
		name string
		body string
		want Body
	}{
		{
			name: "pageview",
			body: `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/a?b=1","referrer":"https://duckduckgo.com/","title":" Home ","w":1280}`,
			want: Body{Site: site, Type: "pageview", URL: "https://example.com/a?b=1", Host: "example.com", Referrer: "https://duckduckgo.com/", Title: "Home", Width: 1280},
		},
		{
			name: "event with revenue",
			body: `{"site":"abcdefghij12345","type":"event","url":"http://example.com/","name":"Purchase","revenue":{"amount":49.9,"currency":"eur"}}`,
			want: Body{Site: site, Type: "event", URL: "http://example.com/", Host: "example.com", Name: "Purchase",
				RevenueAmount: 49_900_000, RevenueCurrency: "EUR"},
		},
		{
			name: "revenue as a decimal string",
			body: `{"site":"abcdefghij12345","type":"event","url":"http://example.com/","name":"Purchase","revenue":{"amount":"0.000001","currency":"JPY"}}`,
			want: Body{Site: site, Type: "event", URL: "http://example.com/", Host: "example.com", Name: "Purchase",
				RevenueAmount: 1, RevenueCurrency: "JPY"},
		},
		{
			name: "event with props",
			body: `{"site":"abcdefghij12345","type":"event","url":"http://example.com/","name":"Signup","props":{"plan":"pro","seats":3,"price":9.5,"big":1e21,"neg":-0,"trial":true,"paid":false,"gone":null}}`,
			want: Body{Site: site, Type: "event", URL: "http://example.com/", Host: "example.com", Name: "Signup",
				Props: map[string]string{"plan": "pro", "seats": "3", "price": "9.5", "big": "1e+21", "neg": "0", "trial": "true", "paid": "false"}},
		},
		{
			name: "control characters dropped, line breaks made spaces",
			body: `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","title":"a\u0000b\u001bc\nd","name":"Sign\u0000up","props":{"k\u0000":"v\u0000w\u0085x"}}`,
			want: Body{Site: site, Type: "event", URL: "https://example.com/", Host: "example.com", Title: "abc d", Name: "Signup",
				Props: map[string]string{"k": "vwx"}},
		},
		{
			name: "title cut at 500 characters, not bytes",
			body: `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/","title":"` + strings.Repeat("😀", 1500) + `"}`,
			want: Body{Site: site, Type: "pageview", URL: "https://example.com/", Host: "example.com", Title: strings.Repeat("😀", 500)},
		},
		{
			name: "unknown fields ignored, name dropped for pageviews",
			body: `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/","name":"x","extra":{"a":[1,2]},"v":2}`,
			want: Body{Site: site, Type: "pageview", URL: "https://example.com/"},
		},
		{
			name: "byte order mark and whitespace",
			body: "\xEF\xBB\xBF \n{\"site\":\"abcdefghij12345\",\"type\":\"ping\",\"url\":\"https://example.com/\"}\n",
			want: Body{Site: site, Type: "ping", URL: "https://example.com/"},
		},
		{
			name: "nulls as absent",
			body: `{"site":"abcdefghij12345","type":"leave","url":"https://example.com/","referrer":null,"title":null,"props":null,"w":null}`,
			want: Body{Site: site, Type: "leave", URL: "https://example.com/"},
		},
		{
			name: "fractional width truncated",
			body: `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/","w":1279.6}`,
			want: Body{Site: site, Type: "pageview", URL: "https://example.com/", Host: "example.com", Width: 1279},
		},
		{
			name: "app referrer",
			body: `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/","referrer":"android-app://com.google.android.gm/"}`,
			want: Body{Site: site, Type: "pageview", URL: "https://example.com/", Host: "example.com", Referrer: "android-app://com.google.android.gm/"},
		},
		{
			name: "long title truncated to 500 runes",
			body: `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/","title":"` + strings.Repeat("é", 600) + `"}`,
			want: Body{Site: site, Type: "pageview", URL: "https://example.com/", Host: "example.com", Title: strings.Repeat("é", 500)},
		},
		{
			name: "limits reached exactly",
			body: `{"site":"abcdefghij12345","type":"event","url":"https://example.com/` + strings.Repeat("a", MaxURL-len("https://example.com/")) +
				`","name":"` + strings.Repeat("n", MaxName) + `","props":{"` + strings.Repeat("k", MaxPropKey) + `":"` + strings.Repeat("v", MaxPropValue) + `"},"w":100000}`,
			want: Body{Site: site, Type: "event", URL: "https://example.com/" + strings.Repeat("a", MaxURL-len("https://example.com/")), Host: "example.com",
				Name: strings.Repeat("n", MaxName), Props: map[string]string{strings.Repeat("k", MaxPropKey): strings.Repeat("v", MaxPropValue)}, Width: 100000},
		},
		{
			name: "ping with engagement",
			body: `{"site":"abcdefghij12345","type":"ping","url":"https://example.com/#/a","h":1,"e":15000.7,"s":80}`,
			want: Body{Site: site, Type: "ping", URL: "https://example.com/#/a", Host: "example.com", Hash: true, Engaged: 15000, Scroll: 80},
		},
		{
			name: "leave at the engagement limits",
			body: `{"site":"abcdefghij12345","type":"leave","url":"https://example.com/","h":0,"e":86400000,"s":100}`,
			want: Body{Site: site, Type: "leave", URL: "https://example.com/", Host: "example.com", Engaged: MaxEngaged, Scroll: MaxScroll},
		},
		{
			name: "zero engagement on a pageview",
			body: `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/","e":0,"s":0,"h":1}`,
			want: Body{Site: site, Type: "pageview", URL: "https://example.com/", Host: "example.com", Hash: true},
		},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			got, err := Parse([]byte(s.body))
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !equal(got, s.want) {
				t.Fatalf("got  %+v\nwant %+v", got, s.want)
			}
			checkInvariants(t, got)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	valid := `"site":"abcdefghij12345","type":"pageview","url":"https://example.com/"`
	manyProps := make([]string, MaxProps+1)
	for i := range manyProps {
		manyProps[i] = `"k` + strconv.Itoa(i) + `":1`
	}

	scenarios := []struct {
		name  string
		body  string
		field string
		code  string
	}{
		{"empty body", ``, "", CodeInvalidJSON},
		{"blank body", " \n ", "", CodeInvalidJSON},
		{"not json", `site=abc`, "", CodeInvalidJSON},
		{"truncated json", `{"site":"abcdefghij12345","type":"pagev`, "", CodeInvalidJSON},
		{"trailing garbage", `{` + valid + `} x`, "", CodeInvalidJSON},
		{"array", `[{` + valid + `}]`, "", CodeInvalidJSON},
		{"string", `"hello"`, "", CodeInvalidJSON},
		{"duplicate field", `{` + valid + `,"site":"abcdefghij12346"}`, "", CodeInvalidJSON},
		{"invalid utf-8", "{" + valid + ",\"title\":\"\xff\"}", "", CodeInvalidJSON},
		{"null body", `null`, "site", CodeRequired},
		{"missing site", `{"type":"pageview","url":"https://example.com/"}`, "site", CodeRequired},
		{"site wrong type", `{"site":123,"type":"pageview","url":"https://example.com/"}`, "site", CodeInvalidType},
		{"site too short", `{"site":"abc","type":"pageview","url":"https://example.com/"}`, "site", CodeInvalid},
		{"site upper case", `{"site":"ABCDEFGHIJ12345","type":"pageview","url":"https://example.com/"}`, "site", CodeInvalid},
		{"site with symbols", `{"site":"abcdefghij1234_","type":"pageview","url":"https://example.com/"}`, "site", CodeInvalid},
		{"missing type", `{"site":"abcdefghij12345","url":"https://example.com/"}`, "type", CodeRequired},
		{"unknown type", `{"site":"abcdefghij12345","type":"click","url":"https://example.com/"}`, "type", CodeInvalid},
		{"type case", `{"site":"abcdefghij12345","type":"Pageview","url":"https://example.com/"}`, "type", CodeInvalid},
		{"missing url", `{"site":"abcdefghij12345","type":"pageview"}`, "url", CodeRequired},
		{"relative url", `{"site":"abcdefghij12345","type":"pageview","url":"/a"}`, "url", CodeInvalid},
		{"ftp url", `{"site":"abcdefghij12345","type":"pageview","url":"ftp://example.com/"}`, "url", CodeInvalid},
		{"url without host", `{"site":"abcdefghij12345","type":"pageview","url":"https:///a"}`, "url", CodeInvalid},
		{"url port only", `{"site":"abcdefghij12345","type":"pageview","url":"http://:80/"}`, "url", CodeInvalid},
		{"unparsable url", `{"site":"abcdefghij12345","type":"pageview","url":"https://exa mple.com/%zz"}`, "url", CodeInvalid},
		{"url too long", `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/` + strings.Repeat("a", MaxURL) + `"}`, "url", CodeTooLong},
		{"url wrong type", `{"site":"abcdefghij12345","type":"pageview","url":["https://example.com/"]}`, "url", CodeInvalidType},
		{"relative referrer", `{` + valid + `,"referrer":"example.com"}`, "referrer", CodeInvalid},
		{"referrer too long", `{` + valid + `,"referrer":"https://e.com/` + strings.Repeat("a", MaxURL) + `"}`, "referrer", CodeTooLong},
		{"event without name", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/"}`, "name", CodeRequired},
		{"event with blank name", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"  "}`, "name", CodeRequired},
		{"event name too long", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"` + strings.Repeat("n", MaxName+1) + `"}`, "name", CodeTooLong},
		{"props not an object", `{` + valid + `,"props":"a=b"}`, "props", CodeInvalidType},
		{"props array", `{` + valid + `,"props":[1]}`, "props", CodeInvalidType},
		{"too many props", `{` + valid + `,"props":{` + strings.Join(manyProps, ",") + `}}`, "props", CodeTooMany},
		{"empty prop key", `{` + valid + `,"props":{"":"x"}}`, "props", CodeInvalid},
		{"prop key too long", `{` + valid + `,"props":{"` + strings.Repeat("k", MaxPropKey+1) + `":"x"}}`, "props", CodeInvalid},
		{"prop value too long", `{` + valid + `,"props":{"k":"` + strings.Repeat("v", MaxPropValue+1) + `"}}`, "props", CodeTooLong},
		{"prop object", `{` + valid + `,"props":{"k":{"a":1}}}`, "props", CodeInvalidType},
		{"prop array", `{` + valid + `,"props":{"k":[1]}}`, "props", CodeInvalidType},
		{"prop number overflow", `{` + valid + `,"props":{"k":1e400}}`, "props", CodeOutOfRange},
		{"negative width", `{` + valid + `,"w":-1}`, "w", CodeOutOfRange},
		{"revenue on a pageview", `{` + valid + `,"revenue":{"amount":1,"currency":"EUR"}}`, "revenue", CodeInvalid},
		{"revenue currency of 2 letters", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Buy","revenue":{"amount":1,"currency":"EU"}}`, "revenue", CodeInvalid},
		{"revenue currency not letters", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Buy","revenue":{"amount":1,"currency":"E1R"}}`, "revenue", CodeInvalid},
		{"revenue without currency", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Buy","revenue":{"amount":1}}`, "revenue", CodeInvalid},
		{"negative revenue", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Buy","revenue":{"amount":-1,"currency":"EUR"}}`, "revenue", CodeInvalid},
		{"revenue with exponent", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Buy","revenue":{"amount":1e3,"currency":"EUR"}}`, "revenue", CodeInvalid},
		{"revenue with 7 decimals", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Buy","revenue":{"amount":0.1234567,"currency":"EUR"}}`, "revenue", CodeInvalid},
		{"revenue too large", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Buy","revenue":{"amount":10000000000,"currency":"EUR"}}`, "revenue", CodeInvalid},
		{"huge width", `{` + valid + `,"w":100001}`, "w", CodeOutOfRange},
		{"width overflow", `{` + valid + `,"w":1e400}`, "w", CodeOutOfRange},
		{"width as string", `{` + valid + `,"w":"1280"}`, "w", CodeInvalidType},
		{"hash flag 2", `{` + valid + `,"h":2}`, "h", CodeInvalid},
		{"hash flag overflow", `{` + valid + `,"h":1e400}`, "h", CodeInvalid},
		{"hash flag as bool", `{` + valid + `,"h":true}`, "h", CodeInvalidType},
		{"negative engaged time", `{"site":"abcdefghij12345","type":"ping","url":"https://example.com/","e":-1}`, "e", CodeOutOfRange},
		{"engaged time over a day", `{"site":"abcdefghij12345","type":"ping","url":"https://example.com/","e":86400001}`, "e", CodeOutOfRange},
		{"engaged time overflow", `{"site":"abcdefghij12345","type":"ping","url":"https://example.com/","e":1e400}`, "e", CodeOutOfRange},
		{"engaged time as string", `{"site":"abcdefghij12345","type":"ping","url":"https://example.com/","e":"5"}`, "e", CodeInvalidType},
		{"scroll over 100", `{"site":"abcdefghij12345","type":"leave","url":"https://example.com/","s":101}`, "s", CodeOutOfRange},
		{"negative scroll", `{"site":"abcdefghij12345","type":"leave","url":"https://example.com/","s":-5}`, "s", CodeOutOfRange},
		{"engagement on a pageview", `{` + valid + `,"e":1000}`, "e", CodeInvalid},
		{"scroll on an event", `{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"x","s":50}`, "s", CodeInvalid},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			p, err := Parse([]byte(s.body))
			if err == nil {
				t.Fatalf("want an error, got %+v", p)
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("want an *Error, got %T %v", err, err)
			}
			if he.Field != s.field || he.Code != s.code || he.Message == "" {
				t.Fatalf("got field %q code %q (%s), want field %q code %q", he.Field, he.Code, he.Message, s.field, s.code)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/a","referrer":"https://google.com/","title":"T","w":1280}`,
		`{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"Signup","props":{"plan":"pro","n":3,"b":true,"x":null}}`,
		`{"site":"abcdefghij12345","type":"ping","url":"http://example.com/"}`,
		`{"site":"abcdefghij12345","type":"leave","url":"http://example.com/","w":1.5}`,
		`{"site":"abcdefghij12345","type":"ping","url":"http://example.com/#/a","h":1,"e":15000.5,"s":100}`,
		`{"site":"abcdefghij12345","type":"pageview","url":"http://example.com/","e":1,"s":-1,"h":2}`,
		`{"site":"abcdefghij12345","type":"event","url":"https://example.com/","name":"  ","props":{"k":{"a":1}}}`,
		`{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/","title":"` + strings.Repeat("é", 501) + `"}`,
		`{"site":"abcdefghij12345","type":"pageview","url":"/relative","referrer":"x"}`,
		`{"site":"abcdefghij12345","site":"abcdefghij12345"}`,
		`{"site":1,"type":[],"url":{},"w":"x","props":[]}`,
		`{"w":-0.5,"props":{"":1}}`,
		"\xEF\xBB\xBF{}",
		`[]`, `null`, ``, `{`, `"\ud800"`, "{\"title\":\"\xff\"}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) || he.Code == "" || he.Message == "" {
				t.Fatalf("error is not a complete *Error: %#v", err)
			}
			return
		}
		checkInvariants(t, p)
	})
}

// checkInvariants asserts what Parse promises about an accepted payload.
func checkInvariants(t *testing.T, p Body) {
	t.Helper()
	if !validSiteID(p.Site) {
		t.Errorf("site %q has not the record id shape", p.Site)
	}
	if !event.ValidType(p.Type) {
		t.Errorf("type %q is not valid", p.Type)
	}
	if u, err := url.Parse(p.URL); len(p.URL) > MaxURL || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		t.Errorf("url %q is not an absolute http(s) URL within limits", p.URL)
	} else if p.Host != u.Hostname() {
		t.Errorf("host %q, want the url's %q", p.Host, u.Hostname())
	}
	if p.Referrer != "" {
		if u, err := url.Parse(p.Referrer); len(p.Referrer) > MaxURL || err != nil || !u.IsAbs() {
			t.Errorf("referrer %q is not an absolute URL within limits", p.Referrer)
		}
	}
	if utf8.RuneCountInString(p.Title) > MaxTitle {
		t.Errorf("title has %d runes", utf8.RuneCountInString(p.Title))
	}
	if p.Type == event.Custom {
		if p.Name == "" || utf8.RuneCountInString(p.Name) > MaxName {
			t.Errorf("event name %q is empty or too long", p.Name)
		}
	} else if p.Name != "" {
		t.Errorf("name %q set on a %s", p.Name, p.Type)
	}
	if p.Props != nil && len(p.Props) == 0 {
		t.Error("props is empty but not nil")
	}
	if len(p.Props) > MaxProps {
		t.Errorf("%d props", len(p.Props))
	}
	for k, v := range p.Props {
		if k == "" || utf8.RuneCountInString(k) > MaxPropKey || utf8.RuneCountInString(v) > MaxPropValue || !utf8.ValidString(k) || !utf8.ValidString(v) {
			t.Errorf("prop %q=%q breaks the limits", k, v)
		}
	}
	if p.Width < 0 || p.Width > MaxWidth {
		t.Errorf("width %d out of range", p.Width)
	}
	if p.Engaged < 0 || p.Engaged > MaxEngaged || p.Scroll < 0 || p.Scroll > MaxScroll {
		t.Errorf("engagement %d ms, %d%% out of range", p.Engaged, p.Scroll)
	}
	if (p.Engaged != 0 || p.Scroll != 0) && p.Type != event.Ping && p.Type != event.Leave {
		t.Errorf("engagement on a %s", p.Type)
	}
	for _, s := range []string{p.Site, p.Type, p.URL, p.Referrer, p.Title, p.Name} {
		if !utf8.ValidString(s) {
			t.Errorf("%q is not valid UTF-8", s)
		}
	}
}

func equal(a, b Body) bool {
	return a.Site == b.Site && a.Type == b.Type && a.URL == b.URL && a.Referrer == b.Referrer &&
		a.Title == b.Title && a.Name == b.Name && a.Width == b.Width && maps.Equal(a.Props, b.Props) &&
		a.Hash == b.Hash && a.Engaged == b.Engaged && a.Scroll == b.Scroll &&
		(a.Props == nil) == (b.Props == nil)
}

func BenchmarkParse(b *testing.B) {
	bodies := map[string]string{
		"pageview": `{"site":"abcdefghij12345","type":"pageview","url":"https://example.com/blog/some-article?utm_source=newsletter","referrer":"https://www.google.com/","title":"Some article – Example","w":1440}`,
		"event":    `{"site":"abcdefghij12345","type":"event","url":"https://example.com/pricing","name":"Signup","props":{"plan":"pro","seats":3,"trial":true}}`,
		"invalid":  `{"site":"abcdefghij12345","type":"pageview","url":"/relative"}`,
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			data := []byte(body)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				_, _ = Parse(data)
			}
		})
	}
}
