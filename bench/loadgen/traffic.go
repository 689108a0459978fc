package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strings"

	"github.com/pocketlytics/pocketlytics/internal/hit"
)

// site is a target site: its id and the domain its pages live on (one of the
// site's allowed domains).
type site struct {
	ID     string
	Domain string
}

// hitReq is one request to send.
type hitReq struct {
	Payload   hit.Body
	IP        string // sent as X-Forwarded-For
	UserAgent string
	Page      string // the page URL, sent as Referer like a browser does
}

type weighted[T any] struct {
	w int
	v T
}

func pick[T any](r *rand.Rand, items []weighted[T]) T {
	total := 0
	for _, it := range items {
		total += it.w
	}
	n := r.IntN(total)
	for _, it := range items {
		if n < it.w {
			return it.v
		}
		n -= it.w
	}
	return items[len(items)-1].v
}

// device is a user agent with the viewport widths it comes with.
type device struct {
	kind       string // desktop, mobile, tablet
	ua         string
	minW, maxW int
}

var devices = []weighted[device]{
	{22, device{"desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 1280, 1920}},
	{10, device{"desktop", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", 1280, 1728}},
	{8, device{"desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 1280, 1920}},
	{6, device{"desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 1366, 1920}},
	{4, device{"desktop", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 1366, 2560}},
	{20, device{"mobile", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 375, 430}},
	{18, device{"mobile", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", 360, 412}},
	{4, device{"mobile", "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", 360, 412}},
	{5, device{"tablet", "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", 768, 1024}},
	{3, device{"tablet", "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 800, 1280}},
}

// countries maps a country to address blocks its ISPs announce, so the
// app's GeoIP lookup sees visitors from many places.
var countries = []weighted[[]netip.Prefix]{
	{25, prefixes("73.0.0.0/8", "2601::/20")},      // US (Comcast)
	{12, prefixes("79.192.0.0/10", "2003::/19")},   // DE (Deutsche Telekom)
	{9, prefixes("86.128.0.0/10", "81.2.69.0/24")}, // GB
	{8, prefixes("90.0.0.0/9")},                    // FR (Orange)
	{6, prefixes("126.0.0.0/8")},                   // JP (SoftBank)
	{6, prefixes("177.0.0.0/10")},                  // BR
	{8, prefixes("117.192.0.0/10")},                // IN (BSNL)
	{4, prefixes("1.128.0.0/11")},                  // AU (Telstra)
	{5, prefixes("83.32.0.0/11")},                  // ES (Telefónica)
	{4, prefixes("83.0.0.0/11")},                   // PL (Orange Polska)
	{3, prefixes("175.192.0.0/10")},                // KR (KT)
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// randomAddr returns a random address inside p.
func randomAddr(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits && r.IntN(2) == 1 {
				b[i] |= 0x80 >> bit
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// source is where a visit comes from.
type source struct {
	referrer string
	utm      string // query string added to the landing page
}

var sources = []weighted[func(r *rand.Rand) source]{
	{40, func(*rand.Rand) source { return source{} }}, // direct
	{30, func(r *rand.Rand) source {
		return source{referrer: pick(r, []weighted[string]{
			{70, "https://www.google.com/"}, {15, "https://www.bing.com/"},
			{10, "https://duckduckgo.com/"}, {5, "https://search.brave.com/"},
		})}
	}},
	{15, func(r *rand.Rand) source {
		return source{referrer: pick(r, []weighted[string]{
			{30, "https://t.co/x1y2z3"}, {25, "https://www.facebook.com/"},
			{25, "https://www.reddit.com/r/selfhosted/"}, {20, "https://www.linkedin.com/feed/"},
		})}
	}},
	{10, func(r *rand.Rand) source {
		return source{referrer: pick(r, []weighted[string]{
			{60, "https://news.ycombinator.com/item?id=4242"}, {40, "https://github.com/awesome/list"},
		})}
	}},
	{5, func(*rand.Rand) source {
		return source{utm: "utm_source=newsletter&utm_medium=email&utm_campaign=winter"}
	}},
}

type page struct {
	path, title string
}

var pages = []weighted[page]{
	{30, page{"/", "Home"}},
	{12, page{"/pricing", "Pricing"}},
	{10, page{"/blog", "Blog"}},
	{8, page{"/blog/self-hosted-analytics", "Self-hosted analytics, explained"}},
	{6, page{"/blog/privacy-without-cookies", "Privacy without cookies"}},
	{4, page{"/blog/release-notes-2-0", "Release notes 2.0"}},
	{8, page{"/docs", "Docs"}},
	{6, page{"/docs/getting-started", "Getting started"}},
	{4, page{"/docs/api", "API reference"}},
	{4, page{"/about", "About us"}},
	{3, page{"/contact", "Contact"}},
	{3, page{"/signup", "Sign up"}},
	{2, page{"/login", "Log in"}},
}

// visit builds one visitor's hits: a landing pageview, maybe more pages,
// heartbeats while reading, a custom event now and then, and a leave.
func visit(r *rand.Rand, sites []site) []hitReq {
	s := sites[r.IntN(len(sites))]
	dev := pick(r, devices)
	blocks := pick(r, countries)
	ip := randomAddr(r, blocks[r.IntN(len(blocks))]).String()
	width := dev.minW + r.IntN(dev.maxW-dev.minW+1)
	src := pick(r, sources)(r)

	var out []hitReq
	add := func(typ string, p page, query, referrer, name string, props map[string]string) {
		u := "https://" + s.Domain + p.path
		if query != "" {
			u += "?" + query
		}
		out = append(out, hitReq{
			Payload: hit.Body{
				Site: s.ID, Type: typ, URL: u, Referrer: referrer, Title: p.title,
				Name: name, Props: props, Width: width,
			},
			IP: ip, UserAgent: dev.ua, Page: u,
		})
	}

	views := 1
	if r.IntN(100) >= 45 { // about 45% bounce
		views += 1 + r.IntN(5)
	}
	prev := ""
	for v := range views {
		p := pick(r, pages)
		query, ref := "", prev
		if v == 0 {
			query, ref = src.utm, src.referrer
		}
		add("pageview", p, query, ref, "", nil)
		for range r.IntN(3) { // heartbeats while the page is open
			add("ping", p, "", "", "", nil)
		}
		switch {
		case p.path == "/signup" && r.IntN(3) == 0:
			add("event", p, "", "", "Signup", map[string]string{
				"plan": pick(r, []weighted[string]{{60, "free"}, {30, "pro"}, {10, "team"}}),
			})
		case strings.HasPrefix(p.path, "/docs") && r.IntN(8) == 0:
			add("event", p, "", "", "Download", map[string]string{"file": "pocketlytics-linux-amd64.tar.gz"})
		}
		prev = "https://" + s.Domain + p.path
		if v == views-1 && r.IntN(10) < 7 { // most closes are seen
			add("leave", p, "", "", "", nil)
		}
	}
	return out
}

// parseSites reads "id[=domain],..." with domain defaulting to def.
func parseSites(spec, def string) ([]site, error) {
	var out []site
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, domain, ok := strings.Cut(part, "=")
		if !ok {
			domain = def
		}
		if id == "" || domain == "" {
			return nil, fmt.Errorf("bad site %q: want ID or ID=DOMAIN", part)
		}
		if u, err := url.Parse("https://" + domain); err != nil || u.Host != domain {
			return nil, fmt.Errorf("bad domain %q", domain)
		}
		out = append(out, site{ID: id, Domain: domain})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no site: pass -sites ID[=DOMAIN],...")
	}
	return out, nil
}
