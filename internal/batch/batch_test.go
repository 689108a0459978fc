package batch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/batch"
)

// gatedSend doubles its items, holding each round trip until release gets
// a value, and records the batches it saw.
type gatedSend struct {
	entered chan struct{} // a round trip started
	release chan struct{}
	mu      sync.Mutex
	batches [][]int
}

func newGatedSend() *gatedSend {
	return &gatedSend{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gatedSend) send(items []int) ([]int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.batches = append(g.batches, append([]int(nil), items...))
	g.mu.Unlock()
	out := make([]int, len(items))
	for i, v := range items {
		out[i] = 2 * v
	}
	return out, nil
}

func TestCallsDuringARoundTripShareTheNext(t *testing.T) {
	g := newGatedSend()
	b := batch.New(g.send, 3)
	t.Cleanup(b.Close)

	results := make(chan [2]int, 10)
	do := func(v int) {
		got, err := b.Do(context.Background(), v)
		if err != nil {
			t.Error(err)
		}
		results <- [2]int{v, got}
	}
	go do(1)
	<-g.entered // 1 is under way, held
	for v := 2; v <= 6; v++ {
		go do(v)
	}
	time.Sleep(50 * time.Millisecond) // 2..6 wait for the round trip of 1
	for range 3 {
		g.release <- struct{}{}
	}
	for range 6 {
		r := <-results
		if r[1] != 2*r[0] {
			t.Fatalf("Do(%d) = %d", r[0], r[1])
		}
	}
	if len(g.batches) != 3 || len(g.batches[0]) != 1 || len(g.batches[1]) != 3 || len(g.batches[2]) != 2 {
		t.Fatalf("batches %v, want [1], then the waiting five in batches of at most 3", g.batches)
	}
}

func TestErrorAnswersTheWholeBatch(t *testing.T) {
	boom := errors.New("boom")
	b := batch.New(func(items []int) ([]int, error) { return nil, boom }, 8)
	t.Cleanup(b.Close)
	if _, err := b.Do(context.Background(), 1); !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want the send's error", err)
	}
	short := batch.New(func(items []int) ([]int, error) { return nil, nil }, 8)
	t.Cleanup(short.Close)
	if _, err := short.Do(context.Background(), 1); err == nil {
		t.Fatal("a send that returns no result must fail the call")
	}
}

func TestGivenUpCallsAreLeftOut(t *testing.T) {
	g := newGatedSend()
	b := batch.New(g.send, 8)
	t.Cleanup(b.Close)

	go b.Do(context.Background(), 1) // holds the round trip
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error)
	go func() { _, err := b.Do(ctx, 2); done <- err }()
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want the caller's deadline", err)
	}
	g.release <- struct{}{}
	// 2's caller is gone: the next round trip carries only 3.
	go func() { g.release <- struct{}{} }()
	if got, err := b.Do(context.Background(), 3); err != nil || got != 6 {
		t.Fatalf("Do(3) = %d, %v", got, err)
	}
	if len(g.batches) != 2 || len(g.batches[1]) != 1 || g.batches[1][0] != 3 {
		t.Fatalf("batches %v, want [1] [3]", g.batches)
	}
}

func TestClose(t *testing.T) {
	b := batch.New(func(items []int) ([]int, error) { return items, nil }, 8)
	if got, err := b.Do(context.Background(), 7); err != nil || got != 7 {
		t.Fatalf("Do = %d, %v", got, err)
	}
	b.Close()
	if _, err := b.Do(context.Background(), 1); !errors.Is(err, batch.ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
}

func TestCloseAnswersCallsNotSent(t *testing.T) {
	g := newGatedSend()
	b := batch.New(g.send, 8)

	go b.Do(context.Background(), 1) // holds the round trip
	<-g.entered
	left := make(chan error)
	go func() { _, err := b.Do(context.Background(), 2); left <- err }()
	time.Sleep(20 * time.Millisecond) // 2 waits for the next round trip
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	time.Sleep(20 * time.Millisecond) // Close waits for the round trip of 1
	g.release <- struct{}{}
	<-closed
	if err := <-left; !errors.Is(err, batch.ErrClosed) {
		t.Fatalf("Do of a call not sent before Close = %v, want ErrClosed", err)
	}
	if len(g.batches) != 1 {
		t.Fatalf("batches %v, want only [1]", g.batches)
	}
}
