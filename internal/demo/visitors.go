package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Domain is the demo site's host name; hits claim to come from its pages.
const Domain = "demo.pocketlytics.local"

// country is a /24 network that the embedded country database places in
// the country; visitors get random addresses inside it.
type country struct {
	code   string
	net    netip.Prefix
	weight int
}

// countries were taken from the embedded database
// (@ip-location-db/geo-whois-asn-country-mmdb); the weights loosely follow
// the world's internet population.
var countries = []country{
	{"US", netip.MustParsePrefix("1.178.151.0/24"), 22},
	{"IN", netip.MustParsePrefix("1.6.7.0/24"), 8},
	{"DE", netip.MustParsePrefix("2.19.247.0/24"), 7},
	{"GB", netip.MustParsePrefix("1.186.7.0/24"), 7},
	{"BR", netip.MustParsePrefix("1.178.39.0/24"), 5},
	{"FR", netip.MustParsePrefix("1.179.119.0/24"), 5},
	{"JP", netip.MustParsePrefix("1.0.23.0/24"), 5},
	{"CA", netip.MustParsePrefix("3.96.7.0/24"), 4},
	{"NL", netip.MustParsePrefix("1.118.39.0/24"), 3},
	{"ES", netip.MustParsePrefix("1.178.231.0/24"), 3},
	{"IT", netip.MustParsePrefix("2.19.23.0/24"), 3},
	{"AU", netip.MustParsePrefix("1.40.7.0/24"), 3},
	{"KR", netip.MustParsePrefix("1.11.7.0/24"), 3},
	{"MX", netip.MustParsePrefix("13.128.23.0/24"), 2},
	{"PL", netip.MustParsePrefix("5.57.135.0/24"), 2},
	{"SE", netip.MustParsePrefix("2.64.7.0/24"), 2},
	{"ID", netip.MustParsePrefix("9.154.7.0/24"), 2},
	{"TR", netip.MustParsePrefix("5.11.135.0/24"), 2},
	{"AR", netip.MustParsePrefix("1.178.55.0/24"), 1},
	{"ZA", netip.MustParsePrefix("3.43.135.0/24"), 1},
	{"NG", netip.MustParsePrefix("15.103.7.0/24"), 1},
	{"EG", netip.MustParsePrefix("41.32.7.0/24"), 1},
	{"KE", netip.MustParsePrefix("41.57.103.0/24"), 1},
	{"SG", netip.MustParsePrefix("1.21.231.0/24"), 1},
	{"UA", netip.MustParsePrefix("5.1.7.0/24"), 1},
	{"NO", netip.MustParsePrefix("2.148.7.0/24"), 1},
	{"FI", netip.MustParsePrefix("2.29.7.0/24"), 1},
	{"CH", netip.MustParsePrefix("4.163.7.0/24"), 1},
	{"NZ", netip.MustParsePrefix("3.102.7.0/24"), 1},
	{"CL", netip.MustParsePrefix("13.128.39.0/24"), 1},
	{"CO", netip.MustParsePrefix("38.191.199.0/24"), 1},
	{"VN", netip.MustParsePrefix("1.52.7.0/24"), 1},
	{"PH", netip.MustParsePrefix("1.37.7.0/24"), 1},
	{"TH", netip.MustParsePrefix("1.0.135.0/24"), 1},
	{"IE", netip.MustParsePrefix("3.40.135.0/24"), 1},
	{"PT", netip.MustParsePrefix("2.80.7.0/24"), 1},
	{"AT", netip.MustParsePrefix("2.21.103.0/24"), 1},
	{"BE", netip.MustParsePrefix("5.23.135.0/24"), 1},
	{"DK", netip.MustParsePrefix("2.104.7.0/24"), 1},
	{"IL", netip.MustParsePrefix("2.52.7.0/24"), 1},
}

type agent struct {
	ua     string
	width  int
	weight int
}

var agents = []agent{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36", 1536, 28},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36", 1440, 12},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15", 1512, 8},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", 1920, 5},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0", 1366, 6},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1", 390, 20},
	{"Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36", 412, 17},
	{"Mozilla/5.0 (iPad; CPU OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1", 820, 4},
}

type source struct {
	referrer string
	query    string // UTM parameters on the landing URL
	weight   int
}

var sources = []source{
	{"", "", 30},
	{"https://www.google.com/", "", 30},
	{"https://duckduckgo.com/", "", 6},
	{"https://news.ycombinator.com/", "", 9},
	{"https://www.reddit.com/r/selfhosted/", "", 7},
	{"https://t.co/", "", 4},
	{"https://github.com/", "", 6},
	{"", "?utm_source=newsletter&utm_medium=email&utm_campaign=launch", 5},
	{"https://www.producthunt.com/", "?utm_source=producthunt&utm_medium=referral&utm_campaign=launch", 3},
}

type page struct {
	path   string
	title  string
	weight int // as a landing page
}

var pages = []page{
	{"/", "Pocketlytics: privacy-friendly analytics", 30},
	{"/features", "Features", 8},
	{"/pricing", "Pricing", 10},
	{"/blog", "Blog", 4},
	{"/blog/launch-week", "Launch week", 10},
	{"/blog/privacy-first-analytics", "Privacy-first analytics", 9},
	{"/docs", "Documentation", 6},
	{"/docs/getting-started", "Getting started", 9},
	{"/docs/api", "API reference", 5},
	{"/about", "About us", 2},
	{"/signup", "Sign up", 3},
}

func pick[T any](r *rand.Rand, items []T, weight func(T) int) T {
	total := 0
	for _, it := range items {
		total += weight(it)
	}
	n := r.IntN(total)
	for _, it := range items {
		if n -= weight(it); n < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

// hit is the tracker's body (see internal/hit).
type hit struct {
	Site     string            `json:"site"`
	Type     string            `json:"type"`
	URL      string            `json:"url"`
	Referrer string            `json:"referrer"`
	Title    string            `json:"title"`
	Name     string            `json:"name,omitempty"`
	Props    map[string]string `json:"props,omitempty"`
	Width    int               `json:"w"`
}

// Simulator sends simulated visitors' hits to an app's /api/collect, each
// from an address in some country (X-Forwarded-For) with a browser's user
// agent: an arrival, a few pages with heartbeats, maybe a custom event, and
// a leave.
type Simulator struct {
	// CollectURL is the ingest endpoint, e.g. http://127.0.0.1:8090/api/collect.
	CollectURL string
	// Site is the demo site's id.
	Site string
	// Rate is the mean number of new visitors per minute.
	Rate float64
	// Initial visitors arrive within the first few seconds.
	Initial int
	// Speed divides every wait (2 = twice as fast). Default 1.
	Speed float64
	// Heartbeat is the ping interval of the simulated trackers (default 15s).
	Heartbeat time.Duration
	// Client sends the hits (default: a client with a 10 s timeout).
	Client *http.Client
	// Seed makes a run repeatable (0: random).
	Seed uint64

	online   atomic.Int64
	sent     atomic.Int64
	refused  atomic.Int64
	mu       sync.Mutex
	lastFail string
}

// Stats reports the visitors on the site now and the hits sent and refused.
func (s *Simulator) Stats() (online, sent, refused int64, lastFailure string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online.Load(), s.sent.Load(), s.refused.Load(), s.lastFail
}

// Run sends visitors until ctx is done, then lets the current visitors
// leave and returns.
func (s *Simulator) Run(ctx context.Context) error {
	if s.Speed <= 0 {
		s.Speed = 1
	}
	if s.Heartbeat <= 0 {
		s.Heartbeat = 15 * time.Second
	}
	if s.Client == nil {
		s.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.Rate <= 0 {
		s.Rate = 30
	}
	seed := s.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := rand.New(rand.NewPCG(seed, seed>>1|1))

	var wg sync.WaitGroup
	start := func(delay time.Duration) {
		v := s.newVisitor(r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if delay > 0 && !sleep(ctx, delay) {
				return
			}
			s.visit(ctx, v)
		}()
	}
	for i := 0; i < s.Initial; i++ {
		start(time.Duration(r.Float64() * float64(3*time.Second)))
	}
	for {
		// Poisson arrivals: exponential gaps with the given mean.
		gap := time.Duration(r.ExpFloat64() / s.Rate * float64(time.Minute) / s.Speed)
		if !sleep(ctx, gap) {
			break
		}
		start(0)
	}
	wg.Wait()
	return nil
}

type visitor struct {
	ip      string
	agent   agent
	source  source
	path    []page
	dwell   []time.Duration
	event   *hit
	country string
}

func (s *Simulator) newVisitor(r *rand.Rand) *visitor {
	c := pick(r, countries, func(c country) int { return c.weight })
	a := c.net.Addr().As4()
	a[3] = byte(1 + r.IntN(254))
	v := &visitor{
		ip:      netip.AddrFrom4(a).String(),
		agent:   pick(r, agents, func(a agent) int { return a.weight }),
		source:  pick(r, sources, func(s source) int { return s.weight }),
		country: c.code,
	}
	// About four in ten visitors bounce; the others read a few pages.
	n := 1
	if r.Float64() > 0.4 {
		n = 2 + r.IntN(4)
	}
	v.path = append(v.path, pick(r, pages, func(p page) int { return p.weight }))
	for len(v.path) < n {
		p := pages[r.IntN(len(pages))]
		if p.path != v.path[len(v.path)-1].path {
			v.path = append(v.path, p)
		}
	}
	for range v.path {
		v.dwell = append(v.dwell, time.Duration(5+r.IntN(55))*time.Second)
	}
	switch x := r.Float64(); {
	case x < 0.08:
		v.event = &hit{Type: "event", Name: "Signup", Props: map[string]string{"plan": []string{"free", "pro", "team"}[r.IntN(3)]}}
	case x < 0.15:
		v.event = &hit{Type: "event", Name: "Download", Props: map[string]string{"format": []string{"pdf", "csv"}[r.IntN(2)]}}
	}
	return v
}

func (s *Simulator) visit(ctx context.Context, v *visitor) {
	s.online.Add(1)
	defer s.online.Add(-1)

	referrer := v.source.referrer
	var last page
	for i, p := range v.path {
		u := "https://" + Domain + p.path
		if i == 0 {
			u += v.source.query
		} else {
			referrer = "https://" + Domain + last.path
		}
		last = p
		s.send(v, hit{Type: "pageview", URL: u, Referrer: referrer, Title: p.title})
		if i == len(v.path)-1 && v.event != nil {
			ev := *v.event
			ev.URL, ev.Title = u, p.title
			s.send(v, ev)
		}
		// Heartbeats while the visitor reads the page.
		left := time.Duration(float64(v.dwell[i]) / s.Speed)
		beat := time.Duration(float64(s.Heartbeat) / s.Speed)
		for left > 0 {
			wait := min(beat, left)
			if !sleep(ctx, wait) {
				s.send(v, hit{Type: "leave", URL: u, Title: p.title})
				return
			}
			left -= wait
			if left > 0 {
				s.send(v, hit{Type: "ping", URL: u, Title: p.title})
			}
		}
	}
	s.send(v, hit{Type: "leave", URL: "https://" + Domain + last.path, Title: last.title})
}

func (s *Simulator) send(v *visitor, h hit) {
	h.Site = s.Site
	h.Width = v.agent.width
	body, _ := json.Marshal(h)
	req, err := http.NewRequest(http.MethodPost, s.CollectURL, bytes.NewReader(body))
	if err != nil {
		s.fail(err.Error())
		return
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", v.agent.ua)
	req.Header.Set("X-Forwarded-For", v.ip)
	req.Header.Set("Origin", "https://"+Domain)
	res, err := s.Client.Do(req)
	s.sent.Add(1)
	if err != nil {
		s.fail(err.Error())
		return
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		s.fail(fmt.Sprintf("%s hit: %s", h.Type, res.Status))
	}
}

func (s *Simulator) fail(msg string) {
	s.refused.Add(1)
	s.mu.Lock()
	s.lastFail = msg
	s.mu.Unlock()
}

// sleep waits for d or until ctx is done; it reports whether it slept fully.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// collectURL joins the app's base URL and the ingest route.
func collectURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("demo: --url must be an absolute URL such as http://127.0.0.1:8090, got %q", base)
	}
	return u.JoinPath("/api/collect").String(), nil
}
