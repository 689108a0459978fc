//go:build unix

package redisq

import (
	"syscall"
	"time"
)

// cpuTime is the process' user and system CPU time so far, for benchmarks
// whose wall time is mostly Redis'.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
