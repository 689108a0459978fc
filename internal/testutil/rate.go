package testutil

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// AtRate makes b.N calls of call(i) at rate calls a second, each on a
// goroutine of its own as an HTTP server would, and reports their
// latencies' p50 and p99. An open loop at a fixed rate, unlike
// RunParallel's closed one, shows the wait a call has behind the others.
func AtRate(b *testing.B, rate int, call func(i int)) {
	b.Helper()
	lat := make([]time.Duration, b.N)
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			call(i)
			lat[i] = time.Since(t)
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return lat[int(q*float64(len(lat)-1))].Seconds() * 1000 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op") // the rate sets the time per call
}
