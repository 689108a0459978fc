package realtime_test

import (
	"bytes"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// benchConfigs are the two deployments: one process, and Redis-backed.
func benchConfigs(b *testing.B) map[string]func(*testing.B) realtime.Config {
	return map[string]func(*testing.B) realtime.Config{
		"memory": func(*testing.B) realtime.Config { return realtime.Config{} },
		"redis": func(b *testing.B) realtime.Config {
			rdb := testutil.Redis(b)
			cfg := realtime.Config{Redis: rdb, Channel: testutil.Unique("pltest-live-"), KeyPrefix: testutil.Unique("pltest")}
			b.Cleanup(func() { cleanupKeys(rdb, cfg.KeyPrefix) })
			return cfg
		},
	}
}

// BenchmarkLatency measures a hit handed to Publish until its arrival
// message is read by an SSE subscriber over HTTP, one hit at a time.
//
//	go test -run '^$' -bench Latency -benchtime 2000x ./realtime/
func BenchmarkLatency(b *testing.B) {
	for name, cfg := range benchConfigs(b) {
		b.Run(name, func(b *testing.B) {
			app, live, base := start(b, cfg(b))
			c := livetest.Connect(b, base)
			c.Subscribe(b, livetest.Token(b, app, "users", livetest.Owner), realtime.Topic(livetest.Site))

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				vid := visitor()
				key := []byte(realtime.VisitorKey(livetest.Site, vid))
				sent := time.Now()
				live.Publish(livetest.Hit(livetest.Site, vid, event.TypePageview, "/"))
				for {
					e := c.Next(b)
					if bytes.Contains(e.Data, key) && bytes.Contains(e.Data, []byte(realtime.TypeArrival)) {
						lat = append(lat, e.At.Sub(sent))
						break
					}
				}
			}
			b.StopTimer()
			report(b, lat)
		})
	}
}

// BenchmarkFanout measures delivery to 500 SSE subscribers of one site while
// hits arrive at 200/s (one per b.N); it reports the delivery latency
// percentiles over all subscribers and the CPU used by the process (server
// and the 500 in-process clients together) as cores.
//
//	go test -run '^$' -bench Fanout -benchtime 1000x -timeout 20m ./realtime/
func BenchmarkFanout(b *testing.B) {
	const subscribers, rate = 500, 200
	for name, cfg := range benchConfigs(b) {
		b.Run(name, func(b *testing.B) {
			app, live, base := start(b, cfg(b))
			token := livetest.Token(b, app, "users", livetest.Owner)

			var (
				mu   sync.Mutex
				sent = map[string]time.Time{} // visitor key → publish time
				lat  = make([]time.Duration, 0, subscribers*b.N)
				got  = make(chan struct{}, subscribers*b.N)
			)
			for range subscribers {
				id := livetest.ConnectFunc(b, base, nil, func(e livetest.Event) {
					visitor, ok := arrivalVisitor(e.Data)
					if !ok {
						return
					}
					mu.Lock()
					at, ok := sent[visitor]
					if ok {
						lat = append(lat, e.At.Sub(at))
					}
					mu.Unlock()
					if ok {
						got <- struct{}{}
					}
				})
				livetest.SubscribeID(b, base, id, token, realtime.Topic(livetest.Site))
			}

			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			cpu0, wall0 := cpuTime(), time.Now()
			b.ResetTimer()
			for range b.N {
				<-tick.C
				vid := visitor()
				mu.Lock()
				sent[realtime.VisitorKey(livetest.Site, vid)] = time.Now()
				mu.Unlock()
				live.Publish(livetest.Hit(livetest.Site, vid, event.TypePageview, "/"))
			}
			deadline := time.After(time.Minute)
			for i := 0; i < subscribers*b.N; i++ {
				select {
				case <-got:
				case <-deadline:
					b.Fatalf("delivered %d of %d messages", i, subscribers*b.N)
				}
			}
			b.StopTimer()
			cores := (cpuTime() - cpu0).Seconds() / time.Since(wall0).Seconds()
			report(b, lat)
			b.ReportMetric(cores, "cpu-cores")
		})
	}
}

// arrivalVisitor cheaply extracts the visitor key of an arrival message, so
// the 500 in-process clients cost little next to the server.
func arrivalVisitor(data []byte) (string, bool) {
	if !bytes.HasPrefix(data, []byte(`{"type":"arrival"`)) {
		return "", false
	}
	const field = `"visitor":"`
	i := bytes.Index(data, []byte(field))
	if i < 0 || len(data) < i+len(field)+16 {
		return "", false
	}
	return string(data[i+len(field) : i+len(field)+16]), true
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(0, "ns/op") // wall time per op is the pacing, not a result
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
