//go:build !unix

package redisq

import "time"

// cpuTime is not measured here: the cpu-ns/op metric stays 0.
func cpuTime() time.Duration { return 0 }
