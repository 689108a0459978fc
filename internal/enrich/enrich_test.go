package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/enrich/geo/geotest"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/session"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// Real User-Agents.
const (
	uaChromeWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaSafariIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	uaSafariIPad    = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	uaSafariMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
	uaFirefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	uaSamsung       = "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
	uaChromeTablet  = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaFirefoxTablet = "Mozilla/5.0 (Android 13; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"
	uaChromeIOS     = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
	uaEdge          = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67"
	uaChromeOS      = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaSamsungTV     = "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36"
	uaCubot         = "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
	uaGooglebot     = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaGooglebotMob  = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.155 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaBingbot       = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"
	uaGPTBot        = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
	uaInspection    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36 Google-InspectionTool/1.0"
	uaHeadless      = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36"
	uaPhantom       = "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1"
	uaLighthouse    = "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"
)

var (
	testIP4 = netip.MustParseAddr("192.0.2.44")
	testIP6 = netip.MustParseAddr("2001:db8:1::44")
	site    = sitecache.Site{ID: "site1", Domains: []string{"example.com", "www.example.com"}, Timezone: "UTC"}
	t0      = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
)

// newPipeline builds a pipeline on a generated GeoLite2-City-style database
// and a ring rotated to t0.
func newPipeline(t testing.TB, cfg Config) *Pipeline {
	t.Helper()
	if cfg.GeoIPDB == "" {
		cfg.GeoIPDB = geotest.Write(t, geotest.GeoIP2City,
			geotest.Entry{Network: "192.0.2.0/24", Country: "GB", Region: "England", City: "London", Latitude: 51.5142, Longitude: -0.0931},
			geotest.Entry{Network: "2001:db8:1::/48", Country: "DE", Region: "Berlin", City: "Berlin", Latitude: 52.52, Longitude: 13.405},
		)
	}
	if cfg.Salts == nil {
		cfg.Salts = salt.NewRing(nil)
		if err := cfg.Salts.Rotate(context.Background(), t0); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func input(ua string, h hit.Body) *Input {
	if h.Type == "" {
		h.Type = event.Pageview
	}
	if h.URL == "" {
		h.URL = "https://example.com/"
	}
	h.Site = site.ID
	return &Input{Hit: h, Site: site, IP: testIP4, UserAgent: ua, Header: http.Header{}, Now: t0}
}

func TestSteps(t *testing.T) {
	p := newPipeline(t, Config{})
	want := []string{"bots", "page", "source", "device", "geo", "identity"}
	if got := p.Steps(); !slices.Equal(got, want) {
		t.Fatalf("Steps() = %v, want %v", got, want)
	}
}

func TestUserAgents(t *testing.T) {
	p := newPipeline(t, Config{})
	cases := []uaCase{
		{name: "Chrome on Windows", ua: uaChromeWindows, device: "desktop", browser: "Chrome", system: "Windows"},
		{name: "Safari on iPhone", ua: uaSafariIPhone, device: "mobile", browser: "Safari", system: "iOS"},
		{name: "Safari on iPad", ua: uaSafariIPad, device: "tablet", browser: "Safari", system: "iOS"},
		{name: "Safari on a Mac", ua: uaSafariMac, device: "desktop", browser: "Safari", system: "macOS"},
		{name: "Firefox on Linux", ua: uaFirefoxLinux, device: "desktop", browser: "Firefox", system: "Linux"},
		{name: "Samsung Internet on Android", ua: uaSamsung, device: "mobile", browser: "Samsung Internet", system: "Android"},
		{name: "Chrome on an Android tablet", ua: uaChromeTablet, device: "tablet", browser: "Chrome", system: "Android"},
		{name: "Firefox on an Android tablet", ua: uaFirefoxTablet, device: "tablet", browser: "Firefox", system: "Android"},
		{name: "Chrome on iPhone", ua: uaChromeIOS, device: "mobile", browser: "Chrome", system: "iOS"},
		{name: "Edge", ua: uaEdge, device: "desktop", browser: "Edge", system: "Windows"},
		{name: "ChromeOS", ua: uaChromeOS, device: "desktop", browser: "Chrome", system: "ChromeOS"},
		{name: "smart TV counts as desktop", ua: uaSamsungTV, device: "desktop", browser: "Samsung Internet", system: "Linux"},
		{name: "a phone named Cubot is no bot", ua: uaCubot, device: "mobile", browser: "Chrome", system: "Android"},
		{name: "unknown browser: width decides", ua: "Mozilla/5.0", width: 390, device: "mobile"},
		{name: "unknown browser, wide", ua: "Mozilla/5.0 (compatible)", width: 1280, device: "desktop"},
		{name: "unknown browser, no width", ua: "Mozilla/5.0"},

		{name: "Googlebot", ua: uaGooglebot, drop: DropBot},
		{name: "Googlebot smartphone", ua: uaGooglebotMob, drop: DropBot},
		{name: "bingbot", ua: uaBingbot, drop: DropBot},
		{name: "GPTBot", ua: uaGPTBot, drop: DropBot},
		{name: "Google-InspectionTool", ua: uaInspection, drop: DropBot},
		{name: "facebookexternalhit", ua: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", drop: DropBot},
		{name: "curl", ua: "curl/8.5.0", drop: DropBot},
		{name: "Wget", ua: "Wget/1.21.4", drop: DropBot},
		{name: "python-requests", ua: "python-requests/2.31.0", drop: DropBot},
		{name: "Go-http-client", ua: "Go-http-client/1.1", drop: DropBot},
		{name: "axios", ua: "axios/1.6.8", drop: DropBot},
		{name: "okhttp", ua: "okhttp/4.12.0", drop: DropBot},
		{name: "empty", ua: "", drop: DropBot},
		{name: "HeadlessChrome", ua: uaHeadless, drop: DropHeadless},
		{name: "PhantomJS", ua: uaPhantom, drop: DropHeadless},
		{name: "Lighthouse", ua: uaLighthouse, drop: DropHeadless},
		{name: "Playwright marker", ua: uaChromeWindows + " Playwright/1.44", drop: DropHeadless},
		{name: "new headless mode via client hints", ua: uaChromeWindows, drop: DropHeadless,
			header: map[string]string{"Sec-CH-UA": `"Chromium";v="124", "HeadlessChrome";v="124", "Not-A.Brand";v="99"`}},
	}
	// Twice: the second round reads every User-Agent from the cache.
	for round := range 2 {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%d", c.name, round), func(t *testing.T) { c.check(t, p) })
		}
	}
}

type uaCase struct {
	name, ua, drop          string
	width                   int
	header                  map[string]string
	device, browser, system string
}

func (c uaCase) check(t *testing.T, p *Pipeline) {
	t.Helper()
	in := input(c.ua, hit.Body{Width: c.width})
	for k, v := range c.header {
		in.Header.Set(k, v)
	}
	ev, drop := p.Run(context.Background(), in)
	if drop != c.drop {
		t.Fatalf("drop = %q, want %q", drop, c.drop)
	}
	if drop != "" {
		if ev.ID != "" || ev.VisitorID != 0 {
			t.Fatalf("a dropped hit returned an event: %+v", ev)
		}
		return
	}
	if ev.Device != c.device || ev.Browser != c.browser || ev.OS != c.system {
		t.Fatalf("device/browser/os = %q/%q/%q, want %q/%q/%q", ev.Device, ev.Browser, ev.OS, c.device, c.browser, c.system)
	}
	if ev.ScreenWidth != c.width {
		t.Fatalf("screen width = %d, want %d", ev.ScreenWidth, c.width)
	}
}

// TestAgentCacheBounded: the User-Agent cache never holds more than
// agentCacheSize entries, nor User-Agents longer than maxCachedUA.
func TestAgentCacheBounded(t *testing.T) {
	p := newPipeline(t, Config{})
	for i := range agentCacheSize + 10 {
		if _, drop := p.Run(context.Background(), input(fmt.Sprintf("%s Build/%d", uaChromeWindows, i), hit.Body{})); drop != "" {
			t.Fatalf("dropped: %s", drop)
		}
	}
	if n := len(p.agents.m); n == 0 || n > agentCacheSize {
		t.Fatalf("cache holds %d User-Agents, want 1..%d", n, agentCacheSize)
	}
	long := uaChromeWindows + strings.Repeat(" x", maxCachedUA)
	if ev, drop := p.Run(context.Background(), input(long, hit.Body{})); drop != "" || ev.Browser != "Chrome" {
		t.Fatalf("long User-Agent: %q, %q", ev.Browser, drop)
	}
	if _, ok := p.agents.m[long]; ok {
		t.Fatal("a User-Agent longer than maxCachedUA was cached")
	}
}

func TestPage(t *testing.T) {
	p := newPipeline(t, Config{})
	cases := []struct {
		name, url, drop, host, path string
		hash                        bool
	}{
		{name: "hash route", url: "https://example.com/app/?x=1#/users/3?tab=2", hash: true, host: "example.com", path: "/app/#/users/3"},
		{name: "hash route without path", url: "https://example.com#/caf%C3%A9", hash: true, host: "example.com", path: "/#/café"},
		{name: "hash that is no route", url: "https://example.com/a#top", hash: true, host: "example.com", path: "/a"},
		{name: "hash route without the flag", url: "https://example.com/a#/b", host: "example.com", path: "/a"},
		{name: "plain", url: "https://example.com/pricing", host: "example.com", path: "/pricing"},
		{name: "www kept, host lower-cased", url: "https://WWW.Example.COM/About", host: "www.example.com", path: "/About"},
		{name: "port, user info, query and fragment dropped", url: "http://user:pw@example.com:8080/a/b?x=1#top", host: "example.com", path: "/a/b"},
		{name: "no path", url: "https://example.com", host: "example.com", path: "/"},
		{name: "query without path", url: "https://example.com?utm_source=x", host: "example.com", path: "/"},
		{name: "percent-decoded", url: "https://example.com/caf%C3%A9/a%20b", host: "example.com", path: "/café/a b"},
		{name: "bad escape kept raw", url: "https://example.com/100%/x", host: "example.com", path: "/100%/x"},
		{name: "invalid UTF-8 escape kept raw", url: "https://example.com/%ff", host: "example.com", path: "/%ff"},
		{name: "IPv6 host", url: "http://[2001:db8::1]:8080/x", host: "2001:db8::1", path: "/x"},
		{name: "long path capped", url: "https://example.com/" + strings.Repeat("é", 2000), host: "example.com", path: "/" + strings.Repeat("é", 1023)},
		{name: "decoded NUL dropped", url: "https://example.com/a%00b", host: "example.com", path: "/ab"},
		{name: "relative URL", url: "/pricing", drop: DropInvalidURL},
		{name: "no host", url: "file:///home/me/index.html", drop: DropInvalidURL},
		{name: "bad host", url: "https://exa mple.com/", drop: DropInvalidURL},
		{name: "garbage", url: "not a url", drop: DropInvalidURL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, drop := p.Run(context.Background(), input(uaChromeWindows, hit.Body{URL: c.url, Hash: c.hash}))
			if drop != c.drop {
				t.Fatalf("drop = %q, want %q", drop, c.drop)
			}
			if ev.Hostname != c.host || ev.Pathname != c.path {
				t.Fatalf("host, path = %q, %q; want %q, %q", ev.Hostname, ev.Pathname, c.host, c.path)
			}
		})
	}
}

func TestUTM(t *testing.T) {
	p := newPipeline(t, Config{})
	type utm struct{ source, medium, campaign, term, content string }
	cases := []struct {
		name, query string
		want        utm
	}{
		{"all five", "utm_source=Newsletter&utm_medium=email&utm_campaign=spring%20sale&utm_term=running+shoes&utm_content=hero",
			utm{"Newsletter", "email", "spring sale", "running shoes", "hero"}},
		{"ref as source", "ref=producthunt", utm{source: "producthunt"}},
		{"source as source", "source=hn&x=1", utm{source: "hn"}},
		{"utm_source wins over ref", "ref=a&utm_source=b", utm{source: "b"}},
		{"undecodable value dropped", "utm_source=%zz&utm_medium=cpc", utm{medium: "cpc"}},
		{"trimmed", "utm_campaign=%20%20launch%20", utm{campaign: "launch"}},
		{"capped", "utm_campaign=" + strings.Repeat("x", 400), utm{campaign: strings.Repeat("x", 256)}},
		{"control characters dropped", "utm_medium=a%00b&utm_source=x%1by", utm{source: "xy", medium: "ab"}},
		{"none", "page=2", utm{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, drop := p.Run(context.Background(), input(uaChromeWindows, hit.Body{URL: "https://example.com/?" + c.query + "#x"}))
			if drop != "" {
				t.Fatal(drop)
			}
			if got := (utm{ev.UTMSource, ev.UTMMedium, ev.UTMCampaign, ev.UTMTerm, ev.UTMContent}); got != c.want {
				t.Fatalf("utm = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestSource(t *testing.T) {
	p := newPipeline(t, Config{})
	cases := []struct {
		name, url, referrer, host, channel string
	}{
		{"no referrer", "", "", "", ChannelDirect},
		{"same page host", "", "https://example.com/blog", "", ChannelDirect},
		{"same site with www", "https://www.example.com/", "https://example.com/", "", ChannelDirect},
		{"other site domain", "https://example.com/", "https://www.example.com/x", "", ChannelDirect},
		{"Google", "", "https://www.google.com/", "google.com", ChannelSearch},
		{"Google UK", "", "https://www.google.co.uk/", "google.co.uk", ChannelSearch},
		{"Bing", "", "https://www.bing.com/search?q=x", "bing.com", ChannelSearch},
		{"DuckDuckGo", "", "https://duckduckgo.com/", "duckduckgo.com", ChannelSearch},
		{"Yahoo search", "", "https://search.yahoo.com/", "search.yahoo.com", ChannelSearch},
		{"Yandex", "", "https://yandex.ru/", "yandex.ru", ChannelSearch},
		{"Baidu", "", "https://www.baidu.com/link?url=x", "baidu.com", ChannelSearch},
		{"Ecosia", "", "https://www.ecosia.org/", "ecosia.org", ChannelSearch},
		{"Brave Search", "", "https://search.brave.com/", "search.brave.com", ChannelSearch},
		{"Startpage", "", "https://www.startpage.com/", "startpage.com", ChannelSearch},
		{"Qwant", "", "https://www.qwant.com/", "qwant.com", ChannelSearch},
		{"Naver", "", "https://search.naver.com/", "search.naver.com", ChannelSearch},
		{"Google app", "", "android-app://com.google.android.googlequicksearchbox/", "com.google.android.googlequicksearchbox", ChannelSearch},
		{"Facebook", "", "https://l.facebook.com/", "l.facebook.com", ChannelSocial},
		{"Instagram", "", "https://l.instagram.com/", "l.instagram.com", ChannelSocial},
		{"t.co", "", "https://t.co/abc", "t.co", ChannelSocial},
		{"X", "", "https://x.com/", "x.com", ChannelSocial},
		{"LinkedIn short link", "", "https://lnkd.in/xyz", "lnkd.in", ChannelSocial},
		{"LinkedIn", "", "https://www.linkedin.com/", "linkedin.com", ChannelSocial},
		{"Reddit", "", "https://old.reddit.com/r/golang", "old.reddit.com", ChannelSocial},
		{"YouTube", "", "https://m.youtube.com/", "m.youtube.com", ChannelSocial},
		{"TikTok", "", "https://www.tiktok.com/", "tiktok.com", ChannelSocial},
		{"Pinterest", "", "https://pinterest.de/", "pinterest.de", ChannelSocial},
		{"Hacker News", "", "https://news.ycombinator.com/item?id=1", "news.ycombinator.com", ChannelSocial},
		{"Mastodon", "", "https://mastodon.social/@x", "mastodon.social", ChannelSocial},
		{"fediverse", "", "https://fosstodon.org/@x", "fosstodon.org", ChannelSocial},
		{"Threads", "", "https://www.threads.net/", "threads.net", ChannelSocial},
		{"Bluesky", "", "https://bsky.app/profile/x", "bsky.app", ChannelSocial},
		{"Gmail", "", "https://mail.google.com/", "mail.google.com", ChannelEmail},
		{"Outlook", "", "https://outlook.live.com/", "outlook.live.com", ChannelEmail},
		{"any webmail", "", "https://webmail.example.org/", "webmail.example.org", ChannelEmail},
		{"Gmail app", "", "android-app://com.google.android.gm/", "com.google.android.gm", ChannelEmail},
		{"email medium", "https://example.com/?utm_medium=email&utm_source=spring", "", "", ChannelEmail},
		{"newsletter medium", "https://example.com/?utm_medium=Newsletter", "", "", ChannelEmail},
		{"newsletter source", "https://example.com/?utm_source=newsletter", "", "", ChannelEmail},
		{"cpc", "https://example.com/?utm_source=google&utm_medium=cpc", "https://www.google.com/", "google.com", ChannelPaid},
		{"paid social", "https://example.com/?utm_medium=paid_social", "https://facebook.com/", "facebook.com", ChannelPaid},
		{"display", "https://example.com/?utm_medium=display", "", "", ChannelPaid},
		{"gclid", "https://example.com/?gclid=abc", "https://www.google.com/", "google.com", ChannelPaid},
		{"msclkid", "https://example.com/?msclkid=abc", "", "", ChannelPaid},
		{"fbclid is not paid", "https://example.com/?fbclid=abc", "https://l.facebook.com/", "l.facebook.com", ChannelSocial},
		{"social medium", "https://example.com/?utm_medium=social&utm_source=mastodon", "", "", ChannelSocial},
		{"source names a social network", "https://example.com/?utm_source=facebook", "", "", ChannelSocial},
		{"source names a host", "https://example.com/?utm_source=news.ycombinator.com", "", "", ChannelSocial},
		{"ref parameter", "https://example.com/?ref=producthunt", "", "", ChannelSocial},
		{"other site", "", "https://blog.golang.org/x", "blog.golang.org", ChannelReferral},
		{"google-looking subdomain of another site", "", "https://google.example.net/", "google.example.net", ChannelReferral},
		{"unknown source", "https://example.com/?utm_source=partner", "", "", ChannelReferral},
		{"port and case", "", "HTTPS://WWW.Bing.COM:443/", "bing.com", ChannelSearch},
		{"garbage referrer", "", "not a url", "", ChannelDirect},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, drop := p.Run(context.Background(), input(uaChromeWindows, hit.Body{URL: c.url, Referrer: c.referrer}))
			if drop != "" {
				t.Fatal(drop)
			}
			if ev.ReferrerHost != c.host || ev.Channel != c.channel {
				t.Fatalf("referrer host, channel = %q, %q; want %q, %q", ev.ReferrerHost, ev.Channel, c.host, c.channel)
			}
		})
	}
}

func TestSubdomainsAreSameSite(t *testing.T) {
	p := newPipeline(t, Config{})
	in := input(uaChromeWindows, hit.Body{URL: "https://docs.example.com/", Referrer: "https://blog.example.com/"})
	ev, _ := p.Run(context.Background(), in)
	if ev.ReferrerHost != "blog.example.com" {
		t.Fatalf("without AllowSubdomains a sibling subdomain is a referrer; got %q", ev.ReferrerHost)
	}
	in.Site.AllowSubdomains = true
	ev, _ = p.Run(context.Background(), in)
	if ev.ReferrerHost != "" || ev.Channel != ChannelDirect {
		t.Fatalf("with AllowSubdomains: %q, %q", ev.ReferrerHost, ev.Channel)
	}
}

func TestGeo(t *testing.T) {
	cases := []struct {
		name    string
		cdns    []string
		ip      netip.Addr
		header  map[string]string
		country string
		region  string
		city    string
	}{
		{name: "IPv4 from the database", ip: testIP4, country: "GB", region: "England", city: "London"},
		{name: "IPv6 from the database", ip: testIP6, country: "DE", region: "Berlin", city: "Berlin"},
		{name: "unknown address", ip: netip.MustParseAddr("10.0.0.1")},
		{name: "untrusted header ignored", ip: testIP4, header: map[string]string{"CF-IPCountry": "FR"}, country: "GB", region: "England", city: "London"},
		{name: "trusted header wins", cdns: []string{"cloudflare"}, ip: testIP4, header: map[string]string{"CF-IPCountry": "FR", "CF-IPCity": "Paris"}, country: "FR", city: "Paris"},
		{name: "trusted Vercel header", cdns: []string{"vercel"}, ip: netip.MustParseAddr("203.0.113.1"),
			header:  map[string]string{"X-Vercel-IP-Country": "US", "X-Vercel-IP-Country-Region": "CA", "X-Vercel-IP-City": "San%20Francisco"},
			country: "US", region: "CA", city: "San Francisco"},
		{name: "XX header falls back to the database", cdns: []string{"cloudflare"}, ip: testIP4, header: map[string]string{"CF-IPCountry": "XX"}, country: "GB", region: "England", city: "London"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPipeline(t, Config{GeoHeaders: c.cdns})
			in := input(uaChromeWindows, hit.Body{})
			in.IP = c.ip
			for k, v := range c.header {
				in.Header.Set(k, v)
			}
			ev, drop := p.Run(context.Background(), in)
			if drop != "" {
				t.Fatal(drop)
			}
			if ev.Country != c.country || ev.Region != c.region || ev.City != c.city {
				t.Fatalf("location = %q/%q/%q, want %q/%q/%q", ev.Country, ev.Region, ev.City, c.country, c.region, c.city)
			}
			if (ev.Latitude != 0 || ev.Longitude != 0) != (c.country != "") {
				t.Fatalf("coordinates %v,%v for country %q", ev.Latitude, ev.Longitude, c.country)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{GeoHeaders: []string{"akamai"}}); err == nil {
		t.Error("unknown CDN accepted")
	}
	if _, err := New(Config{GeoIPDB: t.TempDir() + "/missing.mmdb"}); err == nil {
		t.Error("missing database accepted")
	}
}

func TestZeroConfig(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	in := input(uaChromeWindows, hit.Body{})
	in.Now = time.Now()
	ev, drop := p.Run(context.Background(), in)
	if drop != "" || ev.VisitorID == 0 || ev.SessionID == 0 || !ev.Entry {
		t.Fatalf("zero config: drop %q, event %+v", drop, ev)
	}
}

func TestEventFields(t *testing.T) {
	p := newPipeline(t, Config{})
	now := time.Date(2025, 3, 10, 13, 4, 5, 123456789, time.FixedZone("CET", 3600))

	in := input(uaChromeWindows, hit.Body{Type: event.Custom, Name: "signup", Props: map[string]string{"plan": "pro"}, Title: "Pricing", Width: 1440})
	in.Now = now
	ev, drop := p.Run(context.Background(), in)
	if drop != "" {
		t.Fatal(drop)
	}
	if len(ev.ID) != 32 || strings.Trim(ev.ID, "0123456789abcdef") != "" {
		t.Errorf("ID = %q, want 32 hex digits", ev.ID)
	}
	if want := now.UTC().Truncate(time.Millisecond); !ev.Time.Equal(want) || ev.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", ev.Time, want)
	}
	if ev.SiteID != "site1" || ev.Type != "event" || ev.Name != "signup" || ev.Props["plan"] != "pro" || ev.Title != "Pricing" || ev.ScreenWidth != 1440 {
		t.Errorf("event = %+v", ev)
	}
	if ev.Entry || ev.SessionID == 0 {
		t.Errorf("a custom event may open a session but is never its entry: %+v", ev)
	}

	// Name and Props belong to custom events only.
	pv, _ := p.Run(context.Background(), input(uaChromeWindows, hit.Body{Name: "x", Props: map[string]string{"a": "b"}}))
	if pv.Name != "" || pv.Props != nil {
		t.Errorf("pageview kept name/props: %+v", pv)
	}

	// Ids are unique.
	seen := map[string]bool{}
	for range 1000 {
		ev, _ := p.Run(context.Background(), input(uaChromeWindows, hit.Body{}))
		if seen[ev.ID] {
			t.Fatal("duplicate event id")
		}
		seen[ev.ID] = true
	}

	if _, drop := p.Run(context.Background(), input(uaChromeWindows, hit.Body{Type: "click"})); drop != DropInvalidType {
		t.Errorf("unknown type: drop = %q", drop)
	}
}

func TestIdentity(t *testing.T) {
	ctx := context.Background()
	ring := salt.NewRing(nil)
	p := newPipeline(t, Config{Salts: ring, Sessions: session.NewMemory(0)})
	run := func(at time.Time, mod func(*Input)) (event.Event, string) {
		t.Helper()
		if err := ring.Rotate(ctx, at); err != nil {
			t.Fatal(err)
		}
		in := input(uaChromeWindows, hit.Body{})
		in.Now = at
		if mod != nil {
			mod(in)
		}
		return p.Run(context.Background(), in)
	}
	evening := time.Date(2025, 3, 10, 23, 40, 0, 0, time.UTC)

	a, _ := run(evening, nil)
	if !a.Entry || a.VisitorID == 0 || a.SessionID == 0 || a.VisitorID>>63 != 0 || a.SessionID>>63 != 0 {
		t.Fatalf("first pageview: %+v", a)
	}
	b, _ := run(evening.Add(10*time.Minute), func(in *Input) { in.Hit.URL = "https://example.com/pricing" })
	if b.VisitorID != a.VisitorID || b.SessionID != a.SessionID || b.Entry {
		t.Fatalf("same visitor, same day: %+v vs %+v", b, a)
	}
	other, _ := run(evening.Add(11*time.Minute), func(in *Input) { in.Site.ID = "site2"; in.Hit.URL = "https://other.org/" })
	if other.VisitorID == a.VisitorID {
		t.Fatal("another site got the same visitor id")
	}
	ipv6, _ := run(evening.Add(11*time.Minute), func(in *Input) { in.IP = testIP6 })
	if ipv6.VisitorID == a.VisitorID {
		t.Fatal("another IP got the same visitor id")
	}

	// Across midnight: the visit continues.
	ping, drop := run(evening.Add(25*time.Minute), func(in *Input) { in.Hit.Type = event.Ping })
	if drop != "" || ping.SessionID != a.SessionID || ping.Entry {
		t.Fatalf("ping across midnight: %q %+v", drop, ping)
	}
	c, _ := run(evening.Add(30*time.Minute), nil)
	if c.VisitorID != a.VisitorID || c.SessionID != a.SessionID || c.Entry {
		t.Fatalf("across midnight: %+v, want visitor %d session %d", c, a.VisitorID, a.SessionID)
	}

	// 30 idle minutes: a new session with a new entry, under today's id.
	d, _ := run(evening.Add(61*time.Minute), nil)
	if d.SessionID == a.SessionID || !d.Entry || d.VisitorID == a.VisitorID {
		t.Fatalf("after the timeout: %+v", d)
	}

	// Engagement hits never open a session.
	for _, typ := range []string{event.Ping, event.Leave} {
		if _, drop := run(evening.Add(5*time.Hour), func(in *Input) { in.Hit.Type = typ }); drop != DropNoSession {
			t.Fatalf("%s without a session: drop = %q", typ, drop)
		}
	}
}

func TestNoSalt(t *testing.T) {
	ring := salt.NewRing(salt.NewMemoryStore()) // never rotated
	p := newPipeline(t, Config{Salts: ring})
	if _, drop := p.Run(context.Background(), input(uaChromeWindows, hit.Body{})); drop != DropNoSalt {
		t.Fatalf("drop = %q, want %q", drop, DropNoSalt)
	}
}

// TestNoRawIP checks that no field of an event carries the client address.
func TestNoRawIP(t *testing.T) {
	p := newPipeline(t, Config{GeoHeaders: []string{"cloudflare"}})
	for _, ip := range []netip.Addr{testIP4, testIP6, netip.MustParseAddr("::ffff:192.0.2.44")} {
		for _, typ := range []string{event.Pageview, event.Custom, event.Ping} {
			in := input(uaSafariIPhone, hit.Body{Type: typ, URL: "https://example.com/?utm_source=x", Referrer: "https://google.com/", Name: "n", Props: map[string]string{"k": "v"}})
			in.IP = ip
			ev, drop := p.Run(context.Background(), in)
			if drop != "" {
				t.Fatal(drop)
			}
			data, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, form := range []string{ip.String(), ip.Unmap().String(), ip.StringExpanded()} {
				if strings.Contains(string(data), form) {
					t.Fatalf("event carries the IP %s: %s", form, data)
				}
			}
		}
	}
}

// Pings and leaves keep their engagement; no other hit carries one.
func TestEngagement(t *testing.T) {
	p := newPipeline(t, Config{})
	// Pings and leaves need the visit their pageview started.
	if _, drop := p.Run(context.Background(), input(uaChromeWindows, hit.Body{})); drop != "" {
		t.Fatal(drop)
	}
	for _, typ := range []string{event.Ping, event.Leave, event.Pageview} {
		ev, drop := p.Run(context.Background(), input(uaChromeWindows, hit.Body{Type: typ, Engaged: 15000, Scroll: 80}))
		if drop != "" {
			t.Fatal(drop)
		}
		want := [2]int{15000, 80}
		if typ == event.Pageview {
			want = [2]int{}
		}
		if got := [2]int{ev.Engaged, ev.Scroll}; got != want {
			t.Errorf("%s: engagement %v, want %v", typ, got, want)
		}
	}
}
