package enrich

import (
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/hit"
)

// typicalHit is a pageview from Chrome on Windows, arriving from Google with
// UTM tags, located through the GeoIP database.
func typicalHit() *Input {
	return input(uaChromeWindows, hit.Payload{
		URL:      "https://example.com/blog/post-1?utm_source=google&utm_medium=organic&utm_campaign=launch",
		Referrer: "https://www.google.com/",
		Title:    "A post",
		Width:    1440,
	})
}

func BenchmarkRun(b *testing.B) {
	p := newPipeline(b, Config{})
	in := typicalHit()
	b.ReportAllocs()
	for b.Loop() {
		if _, drop := p.Run(in); drop != "" {
			b.Fatal(drop)
		}
	}
}

func BenchmarkRunParallel(b *testing.B) {
	p := newPipeline(b, Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		in := typicalHit()
		for pb.Next() {
			if _, drop := p.Run(in); drop != "" {
				b.Fatal(drop)
			}
		}
	})
}

func BenchmarkRunBot(b *testing.B) {
	p := newPipeline(b, Config{})
	in := input(uaGooglebot, hit.Payload{URL: "https://example.com/"})
	b.ReportAllocs()
	for b.Loop() {
		if _, drop := p.Run(in); drop != DropBot {
			b.Fatal(drop)
		}
	}
}

// BenchmarkStep times each step alone on a state that the steps before it
// have filled.
func BenchmarkStep(b *testing.B) {
	p := newPipeline(b, Config{})
	for i, st := range p.steps {
		b.Run(st.name, func(b *testing.B) {
			s := &state{in: typicalHit()}
			s.ev.SiteID, s.ev.Type, s.ev.Time = site.ID, "pageview", t0
			for _, before := range p.steps[:i] {
				if drop := before.run(p, s); drop != "" {
					b.Fatal(drop)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if drop := st.run(p, s); drop != "" {
					b.Fatal(drop)
				}
			}
		})
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		newID()
	}
}
