package livetest

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server of the test's own, so a test can stop and
// start it (a real outage, scripts and data lost) without disturbing the
// shared one. It keeps its port across restarts.
type RedisServer struct {
	Addr string // 127.0.0.1:PORT

	t   testing.TB
	cmd *exec.Cmd
}

// NewRedisServer reserves a port for a private redis-server and stops the
// server when the test ends. It does not start it: call Start.
func NewRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	testutil.RedisURL(t) // redis-server is installed where the suite's Redis runs
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not installed: run scripts/services.sh")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &RedisServer{Addr: addr, t: t}
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL.
func (s *RedisServer) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a client of the server, closed when the test ends. It
// fails fast while the server is down.
func (s *RedisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1, DialerRetries: 1,
	})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Start runs the server and waits until it answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(Wait)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not start", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL, as a crash would), if it runs.
func (s *RedisServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
