package enrich

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/enrich/identity"
	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
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

// BenchmarkRunRedis is BenchmarkRun with sessions shared through Redis. A
// new visit's hit waits for one script round trip on top of the in-memory
// work; the later hits of a visit this instance saw go on from memory and
// are written to Redis behind them.
func BenchmarkRunRedis(b *testing.B) {
	b.Run("new visit", func(b *testing.B) {
		p := newPipeline(b, Config{Sessions: benchRedisSessions(b)})
		in := typicalHit()
		b.ReportAllocs()
		var i uint32
		for b.Loop() {
			i++ // a new browser each time
			in.IP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if _, drop := p.Run(in); drop != "" {
				b.Fatal(drop)
			}
		}
	})
	b.Run("visit goes on", func(b *testing.B) {
		p := newPipeline(b, Config{Sessions: benchRedisSessions(b)})
		in := typicalHit()
		b.ReportAllocs()
		for b.Loop() {
			if _, drop := p.Run(in); drop != "" {
				b.Fatal(drop)
			}
		}
	})
}

func BenchmarkRunRedisParallel(b *testing.B) {
	p := newPipeline(b, Config{Sessions: benchRedisSessions(b)})
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

// BenchmarkRunRedisConcurrent is BenchmarkRunRedisParallel with as many hits
// under way as a busy ingest has (16 per CPU), from 1,000 browsers: their
// first hits share session round trips, the later ones go on from memory.
func BenchmarkRunRedisConcurrent(b *testing.B) {
	p := newPipeline(b, Config{Sessions: benchRedisSessions(b)})
	b.ReportAllocs()
	b.SetParallelism(16)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		in := typicalHit()
		for pb.Next() {
			i := next.Add(1)
			in.IP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 250)})
			in.UserAgent = uaChromeWindows[:len(uaChromeWindows)-int(i/250%4)]
			if _, drop := p.Run(in); drop != "" {
				b.Error(drop)
				return
			}
		}
	})
}

func benchRedisSessions(b *testing.B) *identity.RedisSessions {
	r := identity.NewRedisSessions(testutil.Redis(b), testutil.RedisPrefix(b, "pl_bench_")+":", identity.RedisOptions{Logger: discard})
	b.Cleanup(func() {
		// Not a failure: on a loaded machine a round trip can exceed the timeout.
		b.ReportMetric(float64(r.Fallbacks()), "fallbacks")
		r.Close()
	})
	return r
}

// BenchmarkRunAt5000 offers hits at 5,000 a second from 1,000 browsers, as
// concurrent requests would, and reports the latency of Run under that
// load. The ingest target is p99 < 5 ms at this rate; on a machine with
// other load the figures include waiting for a CPU.
func BenchmarkRunAt5000(b *testing.B) {
	for _, c := range []struct {
		name     string
		sessions func(b *testing.B) identity.Sessions
	}{
		{"memory", func(*testing.B) identity.Sessions { return nil }},
		{"redis", func(b *testing.B) identity.Sessions { return benchRedisSessions(b) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := newPipeline(b, Config{Sessions: c.sessions(b)})
			const rate, workers = 5000, 64
			interval := time.Second / rate
			start := time.Now()
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range workers {
				wg.Go(func() {
					in := typicalHit()
					for {
						i := next.Add(1) - 1
						if i >= int64(len(lat)) {
							return
						}
						time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
						in.IP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 250)})
						in.UserAgent = uaChromeWindows[:len(uaChromeWindows)-int(i/250%4)]
						t := time.Now()
						if _, drop := p.Run(in); drop != "" {
							b.Error(drop)
							return
						}
						lat[i] = time.Since(t)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}
