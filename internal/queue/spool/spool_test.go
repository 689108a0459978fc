package spool_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/queue/spool"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// redisServer is a redis-server of the test's own, so the test can kill it
// without disturbing the shared one. It persists every write (appendfsync
// always), so a SIGKILL loses nothing Redis acknowledged.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	testutil.RedisURL(t) // the suite's Redis is there, so is redis-server
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not installed: run scripts/services.sh")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	s := &redisServer{t: t, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not start", s.addr())
}

func (s *redisServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// setup wires a spool over a Redis queue and a local queue; the spool
// bounds each attempt on Redis.
func setup(t *testing.T, addr, dir string) (*spool.Spool, *redisq.Queue, *localq.Queue, *redis.Client) {
	t.Helper()
	client := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
	})
	t.Cleanup(func() { client.Close() })
	rq, err := redisq.New(client, redisq.Options{Stream: "pl:events"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rq.Close() })
	lq, err := localq.Open(dir, localq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lq.Close() })
	sp := spool.New(rq, lq, spool.Options{Timeout: 200 * time.Millisecond, RetryInterval: 50 * time.Millisecond})
	t.Cleanup(func() { sp.Close() })
	return sp, rq, lq, client
}

func newEvent(i int) event.Event {
	return event.Event{
		ID: fmt.Sprintf("%032x", i), Time: time.Now().UTC().Truncate(time.Millisecond),
		SiteID: "s", Type: event.Pageview, Pathname: "/" + strconv.Itoa(i),
	}
}

// streamIDs counts the event ids in the stream.
func streamIDs(t *testing.T, c *redis.Client) map[string]int {
	t.Helper()
	entries, err := c.XRange(context.Background(), "pl:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, e := range entries {
		evs, err := redisq.EntryEvents(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			ids[ev.ID]++
		}
	}
	return ids
}

// waitDrained waits until the spool is empty and healthy again.
func waitDrained(t *testing.T, sp *spool.Spool) spool.Stats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := sp.Stats(context.Background())
		if err == nil && st.Spooled == 0 && st.Healthy {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool not drained: %+v, %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisOutageLosesNothing kills Redis while producers enqueue through
// the spool and restarts it: every acknowledged event must reach the stream.
func TestRedisOutageLosesNothing(t *testing.T) {
	srv := startRedis(t)
	sp, _, _, client := setup(t, srv.addr(), t.TempDir())

	const producers, total = 4, 1200
	var next, acked atomic.Int64
	var mu sync.Mutex
	ackedIDs := map[string]bool{}
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				ev := newEvent(int(i))
				if err := sp.Enqueue(context.Background(), ev); err != nil {
					t.Errorf("Enqueue during the outage: %v", err)
					return
				}
				mu.Lock()
				ackedIDs[ev.ID] = true
				mu.Unlock()
				acked.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}

	waitAcked := func(n int64) {
		for acked.Load() < n && next.Load() <= total {
			time.Sleep(time.Millisecond)
		}
	}
	waitAcked(300)
	srv.kill() // Redis dies mid-stream
	waitAcked(700)
	sawDown := !sp.Healthy()
	srv.start() // and comes back with its data
	wg.Wait()

	if !sawDown {
		t.Fatal("the spool never noticed that Redis was down")
	}
	st := waitDrained(t, sp)
	if st.SpooledTotal == 0 {
		t.Fatal("nothing was spooled during the outage")
	}

	ids := streamIDs(t, client)
	dups := 0
	for id := range ackedIDs {
		switch n := ids[id]; {
		case n == 0:
			t.Errorf("acknowledged event %s is not in the stream", id)
		case n > 1:
			dups++ // a write that timed out but landed; the stores dedupe by id
		}
	}
	if len(ackedIDs) != total {
		t.Fatalf("%d of %d events acknowledged", len(ackedIDs), total)
	}
	t.Logf("%d events, %d spooled during the outage, %d duplicate stream entries", total, st.SpooledTotal, dups)
}

func TestReplaysWhatAnEarlierProcessSpooled(t *testing.T) {
	srv := startRedis(t)
	dir := t.TempDir()

	// An earlier process spooled these and stopped before replaying them.
	lq, err := localq.Open(dir, localq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lq.Enqueue(context.Background(), newEvent(1), newEvent(2), newEvent(3)); err != nil {
		t.Fatal(err)
	}
	lq.Close()

	sp, _, _, client := setup(t, srv.addr(), dir)
	waitDrained(t, sp)
	if ids := streamIDs(t, client); len(ids) != 3 || ids[newEvent(2).ID] != 1 {
		t.Fatalf("stream holds %v, want the three spooled events once each", ids)
	}
}

func TestEnqueueFailsOnlyWhenBothFail(t *testing.T) {
	srv := startRedis(t)
	sp, _, lq, _ := setup(t, srv.addr(), t.TempDir())
	srv.kill()
	lq.Close() // the disk is gone too

	err := sp.Enqueue(context.Background(), newEvent(1))
	if err == nil || !errors.Is(err, localq.ErrClosed) {
		t.Fatalf("Enqueue with Redis and the spool failing = %v, want the spool's error", err)
	}
	if sp.Healthy() {
		t.Fatal("spool still reports healthy with Redis down")
	}
}
