// Package gcpolicy lets the garbage collector run less often while the heap
// is small. The ingest path allocates about 16 KB per hit; at Go's default
// (GOGC=100) and the live heap of a busy instance (about 30 MB), that is
// two to three collections a second at 5,000 hits/s, and each one holds up
// hits on a two-core machine.
//
// Under the policy the heap may grow to five times the live heap (GOGC=400),
// but no further than a soft limit of Target; the limit is kept at least
// twice the live heap, so with a large live heap the collector runs as
// often as Go's default would, never more (a fixed limit below the live
// heap would have it run without pause).
//
//	stop := gcpolicy.Start(gcpolicy.Options{})
//	defer stop()
//
// GOGC or GOMEMLIMIT in the environment leave Go's own policy in place.
package gcpolicy

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Options configure Start. Zero values mean the defaults.
type Options struct {
	// Target is the memory the collector lets the process's Go memory
	// grow to before it runs harder (default 100 MiB).
	Target int64

	// Interval is how often the limit follows the live heap (default 1s).
	Interval time.Duration
}

// gcPercent is GOGC under the policy.
const gcPercent = 400

// Start applies the policy, unless GOGC or GOMEMLIMIT is set, and returns a
// function that restores Go's defaults.
func Start(opts Options) (stop func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	if opts.Target <= 0 {
		opts.Target = 100 << 20
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}

	prevPercent := debug.SetGCPercent(gcPercent)
	prevLimit := debug.SetMemoryLimit(Limit(opts.Target, liveHeap()))

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(opts.Interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				debug.SetMemoryLimit(Limit(opts.Target, liveHeap()))
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}
}

// headroom covers the Go memory beside the heap (stacks, runtime
// structures) that the limit counts too.
const headroom = 16 << 20

// Limit is the soft memory limit for a live heap of live bytes: target, or
// enough for the heap to double, as at Go's default, if that is more.
func Limit(target, live int64) int64 {
	return max(target, 2*live+headroom)
}

// liveHeap reads the heap marked live by the last collection.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
