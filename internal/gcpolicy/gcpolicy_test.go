package gcpolicy_test

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/gcpolicy"
)

func TestLimit(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name         string
		target, live int64
		want         int64
	}{
		{"small heap: the target", 100 * mib, 30 * mib, 100 * mib},
		{"large heap: room to double", 100 * mib, 500 * mib, 1016 * mib},
		{"at the edge", 100 * mib, 42 * mib, 100 * mib},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := gcpolicy.Limit(c.target, c.live); got != c.want {
				t.Fatalf("Limit(%d MiB, %d MiB) = %d MiB, want %d MiB", c.target/mib, c.live/mib, got/mib, c.want/mib)
			}
		})
	}
}

// TestStartFollowsLiveHeap keeps a live heap above the target: the limit
// must rise with it, or the collector would run without pause.
func TestStartFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	const target = 8 << 20
	stop := gcpolicy.Start(gcpolicy.Options{Target: target, Interval: 10 * time.Millisecond})
	defer stop()
	if p := debug.SetGCPercent(-1); p != 400 {
		t.Errorf("GOGC = %d, want 400", p)
	}
	debug.SetGCPercent(400)

	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20) // 64 MiB, well above the target
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) < 2*64<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d MiB with 64 MiB live", debug.SetMemoryLimit(-1)>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(live)
}

func TestStartLeavesEnvironmentAlone(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := debug.SetMemoryLimit(-1)
	stop := gcpolicy.Start(gcpolicy.Options{})
	defer stop()
	if p := debug.SetGCPercent(-1); p == 400 {
		t.Error("GOGC set in the environment, yet the policy changed it")
	} else {
		debug.SetGCPercent(p)
	}
	if debug.SetMemoryLimit(-1) != before {
		t.Error("the memory limit changed")
	}
}
