package presence_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
	"github.com/pocketlytics/pocketlytics/realtime/presence"
	"github.com/redis/go-redis/v9"
)

// BenchmarkRedisTouch applies batches of 100 hits over 3 sites (pageviews,
// pings, events, leaves of 3,000 visitors per site, about what the live
// worker gets at 3,000 hits/s) with the former per-hit script and with one
// script call per site. It runs on a redis-server of its own, so INFO's
// figures are the benchmark's alone: redis-us/hit is Redis's CPU (user+sys),
// script-us/hit the scripts' command time, calls/hit the commands Redis ran
// (those inside scripts included).
//
//	go test -run '^$' -bench RedisTouch -benchtime 2000x ./realtime/presence/
func BenchmarkRedisTouch(b *testing.B) {
	srv := livetest.NewRedisServer(b)
	srv.Start()
	rdb := srv.Client()
	ctx := context.Background()

	for _, bc := range []struct {
		name  string
		touch func(*presence.Redis, []presence.Sighting) ([]presence.Result, error)
	}{
		{"per-hit", func(r *presence.Redis, h []presence.Sighting) ([]presence.Result, error) {
			return presence.TouchPerHit(ctx, r, h)
		}},
		{"per-site", func(r *presence.Redis, h []presence.Sighting) ([]presence.Result, error) {
			return r.Touch(ctx, h)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := &clock{t: t0}
			st := presence.NewRedis(rdb, presence.Options{Prefix: testutil.Unique("bench"), Now: c.Now})
			rng := rand.New(rand.NewPCG(1, 2))
			const size = 100
			batch := make([]presence.Sighting, size)
			now := t0

			before := redisStats(b, rdb)
			b.ResetTimer()
			for range b.N {
				now = now.Add(size * time.Second / 3000)
				c.Set(now)
				fillBatch(rng, batch, now)
				if _, err := bc.touch(st, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			after := redisStats(b, rdb)
			report(b, before, after, b.N*size, "hit")
		})
	}
}

// BenchmarkRedisSettle settles batches of 100 departures over 3 sites (a
// fifth of them cancelled by a later hit) with the former per-departure
// script and with one script call per site. The visitors and their leaves
// are set up before the timer, so the INFO figures are the settles' alone.
//
//	go test -run '^$' -bench RedisSettle -benchtime 2000x ./realtime/presence/
func BenchmarkRedisSettle(b *testing.B) {
	srv := livetest.NewRedisServer(b)
	srv.Start()
	rdb := srv.Client()
	ctx := context.Background()

	for _, bc := range []struct {
		name   string
		settle func(*presence.Redis, []presence.Departure) ([]bool, error)
	}{
		{"per-departure", func(r *presence.Redis, d []presence.Departure) ([]bool, error) {
			return presence.SettlePerDeparture(ctx, r, d)
		}},
		{"per-site", func(r *presence.Redis, d []presence.Departure) ([]bool, error) {
			return r.Settle(ctx, d)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := &clock{t: t0}
			st := presence.NewRedis(rdb, presence.Options{Prefix: testutil.Unique("bench"), Now: c.Now})
			const size = 100
			deps := make([][]presence.Departure, b.N)
			for n := range b.N {
				var hits, later []presence.Sighting
				for i := range size {
					v := strconv.Itoa(n*size + i)
					site := "bench" + strconv.Itoa(i%3)
					hits = append(hits, on(site, pv(v, "/", t0)), on(site, leave(v, t0.Add(time.Second))))
					if i%5 == 0 {
						later = append(later, on(site, ping(v, t0.Add(2*time.Second))))
					}
					deps[n] = append(deps[n], presence.Departure{Site: site, Visitor: v, At: t0.Add(time.Second)})
				}
				if _, err := st.Touch(ctx, hits); err != nil {
					b.Fatal(err)
				}
				if _, err := st.Touch(ctx, later); err != nil {
					b.Fatal(err)
				}
			}
			c.Set(t0.Add(time.Second + presence.DefaultGrace))

			before := redisStats(b, rdb)
			b.ResetTimer()
			for n := range b.N {
				if _, err := bc.settle(st, deps[n]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			after := redisStats(b, rdb)
			report(b, before, after, b.N*size, "dep")
		})
	}
}

// report adds the per-item figures of a Redis benchmark.
func report(b *testing.B, before, after stats, n int, item string) {
	f := float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/f, "ns/"+item)
	b.ReportMetric((after.cpu-before.cpu)*1e6/f, "redis-us/"+item)
	b.ReportMetric((after.scriptUsec-before.scriptUsec)/f, "script-us/"+item)
	b.ReportMetric((after.calls-before.calls)/f, "calls/"+item)
}

func fillBatch(rng *rand.Rand, batch []presence.Sighting, now time.Time) {
	for i := range batch {
		v := strconv.Itoa(rng.IntN(3000))
		at := now.Add(-time.Duration(rng.IntN(500)) * time.Millisecond)
		var h presence.Sighting
		switch n := rng.IntN(10); {
		case n < 4:
			h = pv(v, "/page/"+strconv.Itoa(rng.IntN(50)), at)
			h.Referrer = "news.example.com"
		case n < 7:
			h = ping(v, at)
		case n < 8:
			h = ping(v, at) // a custom event
			h.Page = "/page/1"
		default:
			h = leave(v, at)
		}
		h.Site = "bench" + strconv.Itoa(rng.IntN(3))
		batch[i] = h
	}
}

type stats struct {
	cpu        float64 // seconds, user + sys
	scriptUsec float64
	calls      float64
}

// redisStats reads Redis's CPU time and, from INFO commandstats, the
// EVALSHA time and all commands' calls.
func redisStats(b *testing.B, rdb *redis.Client) stats {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu", "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var s stats
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case name == "used_cpu_user" || name == "used_cpu_sys":
			f, _ := strconv.ParseFloat(val, 64)
			s.cpu += f
		case strings.HasPrefix(name, "cmdstat_"):
			for field := range strings.SplitSeq(val, ",") {
				k, v, _ := strings.Cut(field, "=")
				f, _ := strconv.ParseFloat(v, 64)
				switch {
				case k == "calls" && name != "cmdstat_info":
					s.calls += f
				case k == "usec" && name == "cmdstat_evalsha":
					s.scriptUsec += f
				}
			}
		}
	}
	return s
}
