package localq_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
)

const killChildEnv = "LOCALQ_KILL_CHILD_DIR"

// TestSIGKILL runs producers in a child process, kills it with SIGKILL in
// the middle of the load and checks that every event whose Enqueue had
// returned (the child printed its id) is in the reopened queue.
func TestSIGKILL(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		runKillChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}

	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILL$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	acked := map[string]bool{}
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "acked ")
		if !ok {
			continue
		}
		acked[id] = true
		if len(acked) == 5000 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill (%d events acknowledged): %v", len(acked), err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", cmd.ProcessState)
	}

	q := open(t, dir, localq.Options{})
	seen := map[string]bool{}
	for _, m := range readAll(t, q) {
		if seen[m.Event.ID] {
			t.Fatalf("event %s stored twice", m.Event.ID)
		}
		seen[m.Event.ID] = true
	}
	missing := 0
	for id := range acked {
		if !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost after SIGKILL", missing, len(acked))
	}
	t.Logf("%d acknowledged before the kill, %d in the queue after restart, %d segments",
		len(acked), len(seen), len(segmentFiles(t, dir)))
}

// runKillChild enqueues from several goroutines until it is killed,
// printing each id once its Enqueue returned.
func runKillChild(dir string) {
	q, err := localq.Open(dir, localq.Options{SegmentSize: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Minute) // in case the parent never kills
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				id := fmt.Sprintf("k%d-%d", g, i)
				evs := events(id, 1+i%3)
				if err := q.Enqueue(context.Background(), evs...); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				for _, ev := range evs {
					os.Stdout.WriteString("acked " + ev.ID + "\n")
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
