package enrich

import (
	"bytes"
	"strings"
	"sync"

	useragent "github.com/medama-io/go-useragent"
)

// maxUAScan bounds how much of a User-Agent the marker scan reads.
const maxUAScan = 512

// headlessMarkers are lower-case substrings of User-Agents of headless and
// automated browsers. go-useragent reports HeadlessChrome as a plain bot and
// misses the others, which otherwise look like real browsers.
var headlessMarkers = [][]byte{
	[]byte("headless"),   // HeadlessChrome, "Headless" builds
	[]byte("phantomjs"),  // PhantomJS
	[]byte("slimerjs"),   // SlimerJS
	[]byte("lighthouse"), // Chrome-Lighthouse, PageSpeed Insights
	[]byte("puppeteer"),  // Puppeteer with a custom UA suffix
	[]byte("playwright"), // Playwright with a custom UA suffix
	[]byte("selenium"),   // Selenium grid defaults
	[]byte("webdriver"),  // WebDriver-based tools
	[]byte("jsdom"),      // jsdom ("... jsdom/24.0.0")
	[]byte("gtmetrix"),   // GTmetrix
	[]byte("ptst/"),      // WebPageTest
}

// botMarkers are lower-case substrings that mark crawlers and tools the
// parser misses, in User-Agents that otherwise look like browsers (such as
// GPTBot's or Google-InspectionTool's). A bare "bot" would also match phone
// models (Cubot), so the markers include what follows it.
var botMarkers = [][]byte{
	[]byte("bot/"), []byte("bot;"), []byte("bot)"), []byte("bot-"), []byte("_bot"), []byte("robot"),
	[]byte("spider"), []byte("crawl"), []byte("scrape"), []byte("archiver"),
	[]byte("http://"), []byte("https://"), []byte("+http"), // real browsers never carry a URL
	[]byte("google-"), []byte("apis-google"), []byte("feedfetcher"),
	[]byte("synthetics"), []byte("pingdom"), []byte("statuscake"),
}

// stepBots drops crawlers, scripts and headless browsers:
//
//  1. headless markers in the User-Agent or in Sec-CH-UA ("HeadlessChrome"
//     brand) → "headless"
//  2. an empty User-Agent, or one that does not start like a browser's
//     ("Mozilla/" or "Opera/"): curl, Wget, python-requests, Go-http-client,
//     axios, okhttp, node-fetch... → "bot"
//  3. go-useragent's bot detection (Googlebot, bingbot, Slurp, ...) → "bot"
//  4. botMarkers → "bot"
//
// What the User-Agent tells is read once per distinct User-Agent (see
// agentCache); only the Sec-CH-UA check runs for every hit.
func stepBots(p *Pipeline, s *state) string {
	ua := s.in.UserAgent
	if ua == "" {
		return DropBot
	}
	info := p.cachedAgent(ua)
	if info.drop == DropHeadless {
		return DropHeadless
	}
	if ch := s.in.Header["Sec-Ch-Ua"]; len(ch) > 0 && strings.Contains(ch[0], "Headless") {
		return DropHeadless
	}
	if info.drop != "" {
		return info.drop
	}
	s.agent = info.agent
	return ""
}

// agentInfo is what a User-Agent alone tells: its drop reason ("" for a
// browser) and, for a browser, go-useragent's reading of it.
type agentInfo struct {
	drop  string
	agent useragent.UserAgent
}

// readAgent applies the User-Agent checks of stepBots to ua.
func (p *Pipeline) readAgent(ua string) agentInfo {
	lower := lowerASCII(ua)
	for _, m := range headlessMarkers {
		if bytes.Contains(lower, m) {
			return agentInfo{drop: DropHeadless}
		}
	}
	if !strings.HasPrefix(ua, "Mozilla/") && !strings.HasPrefix(ua, "Opera/") {
		return agentInfo{drop: DropBot}
	}
	agent := p.ua.Parse(ua)
	if agent.IsBot() {
		return agentInfo{drop: DropBot}
	}
	for _, m := range botMarkers {
		if bytes.Contains(lower, m) {
			return agentInfo{drop: DropBot}
		}
	}
	return agentInfo{agent: agent}
}

// agentCache remembers what recent User-Agents told. A site's hits come
// from comparatively few User-Agents, and reading one (go-useragent's trie
// walk and a scan for some thirty markers) cost more than the rest of a
// hit's enrichment but its session lookup.
type agentCache struct {
	mu sync.RWMutex
	m  map[string]agentInfo
}

const (
	// agentCacheSize bounds the cache: 4096 User-Agents of at most
	// maxCachedUA bytes, 2 MiB at most.
	agentCacheSize = 4096
	maxCachedUA    = 512
)

// cachedAgent returns what ua tells, from the cache or read and cached.
func (p *Pipeline) cachedAgent(ua string) agentInfo {
	if len(ua) > maxCachedUA {
		return p.readAgent(ua)
	}
	c := &p.agents
	c.mu.RLock()
	info, ok := c.m[ua]
	c.mu.RUnlock()
	if ok {
		return info
	}
	info = p.readAgent(ua)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= agentCacheSize {
		// Start over: traffic that fills the cache is too diverse for an
		// eviction order to pay for itself.
		c.m = make(map[string]agentInfo, agentCacheSize/4)
	}
	c.m[strings.Clone(ua)] = info // not the request's header buffer
	c.mu.Unlock()
	return info
}

// lowerASCII returns the ASCII-lower-cased first maxUAScan bytes of s.
func lowerASCII(s string) []byte {
	if len(s) > maxUAScan {
		s = s[:maxUAScan]
	}
	dst := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
