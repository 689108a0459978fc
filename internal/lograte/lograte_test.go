package lograte_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/lograte"
)

func TestEvery(t *testing.T) {
	l := lograte.Every(500 * time.Millisecond)
	if n, ok := l.Allow(); !ok || n != 0 {
		t.Fatalf("first: %d, %v; want 0, true", n, ok)
	}

	// A burst from many goroutines: none of it gets through.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, ok := l.Allow(); ok {
					t.Error("allowed within the interval")
				}
			}
		})
	}
	wg.Wait()

	time.Sleep(600 * time.Millisecond)
	if n, ok := l.Allow(); !ok || n != 800 {
		t.Fatalf("after the interval: %d, %v; want 800, true", n, ok)
	}
	if _, ok := l.Allow(); ok {
		t.Fatal("allowed twice in one interval")
	}
}
