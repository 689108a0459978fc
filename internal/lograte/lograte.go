// Package lograte keeps a fault that recurs on every request or batch to a
// bounded number of log entries: the first at once, then at most one per
// interval, each saying how many it stands for. The operator sees the fault
// without the log store filling with copies of it.
//
// Usage:
//
//	var queueFault = lograte.Every(10 * time.Second)
//	if n, ok := queueFault.Allow(); ok {
//		app.Logger().Warn("Failed to queue a hit", "error", err.Error(), "suppressed", n)
//	}
package lograte

import (
	"sync/atomic"
	"time"
)

// Limiter allows one entry per interval. It is safe for concurrent use.
type Limiter struct {
	interval   int64        // nanoseconds
	last       atomic.Int64 // unix nanoseconds of the last entry allowed
	suppressed atomic.Int64 // entries held back since then
}

// Every returns a Limiter that allows an entry at once, then one per interval.
func Every(interval time.Duration) *Limiter {
	return &Limiter{interval: int64(interval)}
}

// Allow reports whether an entry may be written now and, if so, how many
// were held back since the last one allowed.
func (l *Limiter) Allow() (suppressed int64, ok bool) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if (last != 0 && now-last < l.interval) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return 0, false
	}
	return l.suppressed.Swap(0), true
}
