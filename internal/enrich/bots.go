package enrich

import (
	"bytes"
	"strings"
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
func stepBots(p *Pipeline, s *state) string {
	ua := s.in.UserAgent
	if ua == "" {
		return DropBot
	}
	s.lowerUA = lowerASCII(s.buf[:0], ua)
	for _, m := range headlessMarkers {
		if bytes.Contains(s.lowerUA, m) {
			return DropHeadless
		}
	}
	if ch := s.in.Header["Sec-Ch-Ua"]; len(ch) > 0 && strings.Contains(ch[0], "Headless") {
		return DropHeadless
	}
	if !strings.HasPrefix(ua, "Mozilla/") && !strings.HasPrefix(ua, "Opera/") {
		return DropBot
	}
	s.agent = p.ua.Parse(ua)
	if s.agent.IsBot() {
		return DropBot
	}
	for _, m := range botMarkers {
		if bytes.Contains(s.lowerUA, m) {
			return DropBot
		}
	}
	return ""
}

// lowerASCII appends the ASCII-lower-cased first maxUAScan bytes of s to dst.
func lowerASCII(dst []byte, s string) []byte {
	if len(s) > maxUAScan {
		s = s[:maxUAScan]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
