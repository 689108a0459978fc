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
		touch func(*presence.Redis, []presence.Hit) ([]presence.Result, error)
	}{
		{"per-hit", func(r *presence.Redis, h []presence.Hit) ([]presence.Result, error) {
			return presence.TouchPerHit(ctx, r, h)
		}},
		{"per-site", func(r *presence.Redis, h []presence.Hit) ([]presence.Result, error) {
			return r.Touch(ctx, h)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := &clock{t: t0}
			st := presence.NewRedis(rdb, presence.Options{Prefix: testutil.Unique("bench"), Now: c.Now})
			rng := rand.New(rand.NewPCG(1, 2))
			const size = 100
			batch := make([]presence.Hit, size)
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
			hits := float64(b.N * size)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/hits, "ns/hit")
			b.ReportMetric((after.cpu-before.cpu)*1e6/hits, "redis-us/hit")
			b.ReportMetric((after.scriptUsec-before.scriptUsec)/hits, "script-us/hit")
			b.ReportMetric((after.calls-before.calls)/hits, "calls/hit")
		})
	}
}

func fillBatch(rng *rand.Rand, batch []presence.Hit, now time.Time) {
	for i := range batch {
		v := strconv.Itoa(rng.IntN(3000))
		at := now.Add(-time.Duration(rng.IntN(500)) * time.Millisecond)
		var h presence.Hit
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
